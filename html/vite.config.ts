import { defineConfig } from 'vitest/config';

// During `npm run dev`, API calls are proxied to a locally running nginx
// (override with AVATAR_API_ORIGIN). In production nginx serves dist/ itself
// and answers /api and /health on the same origin.
const apiOrigin = process.env.AVATAR_API_ORIGIN ?? 'http://127.0.0.1:8080';

export default defineConfig({
  // JSX/TSX is compiled by Vite's built-in transformer (oxc) using the
  // automatic runtime, so no React plugin (and no Babel) is needed.
  oxc: {
    jsx: { runtime: 'automatic' },
  },
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    sourcemap: false,
    // Vite's default output names are content-hashed (assets/[name]-[hash].js,
    // .css), so nginx can serve /assets/ with a long-lived immutable cache.
  },
  server: {
    proxy: {
      '/api': { target: apiOrigin, changeOrigin: true, ws: true },
      '/health': { target: apiOrigin, changeOrigin: true },
    },
  },
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts', 'src/**/*.test.tsx'],
  },
});
