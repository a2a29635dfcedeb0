import { defineConfig } from 'vite';

// `npm run dev` proxies the API, the issuer and /config.json to a running `cargo xtask dev`
// (DASHBOARD_API, default its usual port), so the app is served by Vite with hot reload.
const api = process.env.DASHBOARD_API ?? 'http://127.0.0.1:4010';

export default defineConfig({
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: { target: 'es2022', sourcemap: false },
  server: {
    proxy: Object.fromEntries(
      ['/v1', '/oauth2', '/.well-known', '/config.json', '/jwks.json'].map((p) => [p, api]),
    ),
  },
});
