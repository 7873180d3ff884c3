import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { defineConfig, type Plugin } from 'vite';
import preact from '@preact/preset-vite';

/**
 * gzip and brotli copies of every compressible file of the build (`x.js.gz`, `x.js.br`), made once here at maximum
 * level so that the hub serves them as files (serveStatic `precompressed`) instead of compressing on each request.
 */
function precompress(): Plugin {
  let outDir = 'dist';
  return {
    name: 'kf-precompress',
    apply: 'build',
    configResolved(c) {
      outDir = path.resolve(c.root, c.build.outDir);
    },
    closeBundle() {
      for (const e of fs.readdirSync(outDir, { withFileTypes: true, recursive: true })) {
        if (!e.isFile() || !/\.(html|js|mjs|css|json|svg|map|txt)$/.test(e.name)) continue;
        const file = path.join(e.parentPath, e.name);
        const data = fs.readFileSync(file);
        fs.writeFileSync(`${file}.gz`, zlib.gzipSync(data, { level: 9 }));
        fs.writeFileSync(`${file}.br`, zlib.brotliCompressSync(data, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length } }));
      }
    },
  };
}

// In dev the hub runs separately (`pnpm hub`); Vite proxies the API and the event stream to it.
const hub = process.env.KF_HUB_ORIGIN ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [preact(), precompress()],
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
