import { defineConfig } from '@playwright/test';
import { execSync } from 'node:child_process';

// Debian's chromium (no Playwright browser download here): `cargo xtask web` passes its path;
// run by hand, `command -v chromium` finds it.
const executablePath =
  process.env.CHROMIUM_PATH || execSync('command -v chromium', { shell: '/bin/sh' }).toString().trim();

export default defineConfig({
  testDir: 'tests',
  outputDir: process.env.PLAYWRIGHT_OUTPUT_DIR ?? 'test-results',
  // The flows wait for the platform's scheduler (10 s ticks), cooling-off and the emulator.
  timeout: 180_000,
  expect: { timeout: 45_000 },
  // The client's flow and the desk's run side by side (2 cores; each mostly waits).
  workers: 2,
  retries: 0,
  use: {
    baseURL: process.env.DASHBOARD_URL ?? 'http://127.0.0.1:4010',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    },
  },
  projects: [
    { name: 'e2e', testIgnore: /screenshots\.spec\.ts/ },
    { name: 'screenshots', testMatch: /screenshots\.spec\.ts/, use: { viewport: { width: 1280, height: 860 } } },
  ],
});
