import { defineConfig } from 'vite';
import preact from '@preact/preset-vite';

// In dev the hub runs separately (`pnpm hub`); Vite proxies the API and the event stream to it.
const hub = process.env.KF_HUB_ORIGIN ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [preact()],
  server: {
    proxy: {
      '/api': { target: hub, changeOrigin: false },
      '/metrics': { target: hub },
    },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // The first-load budget is 200 KB of gzipped script. The entry chunk measured 177 KB raw / 54 KB gzip (most of
    // it zod, pulled in through the protocol package); warn well before the budget is at risk.
    chunkSizeWarningLimit: 300,
  },
});
