// Builds the renderer into renderer/dist (served by the app's tether:// protocol
// and by the dev bridge). `npm run dev:web` uses this config through vite's API.
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  base: './',
  plugins: [svelte()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2023',
    sourcemap: false,
    // One page, no eval, no inline scripts: the CSP forbids both.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    reportCompressedSize: false,
  },
  server: { host: '127.0.0.1', strictPort: false },
});
