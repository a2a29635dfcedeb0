import { defineConfig } from 'vite';

// Served by the platform's own origin (the local stack, or CloudFront): the development issuer
// accepts redirects to that origin only, so there is no separate dev server to sign in through;
// `npm run build -- --watch` rebuilds web/dist for the running stack instead.
export default defineConfig({
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: { target: 'es2022', sourcemap: false },
});
