// Bundles the preload (with zod and the contract) into dist/preload/preload.cjs:
// a sandboxed preload can require only 'electron' and a few built-ins.
import { build } from 'vite';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');

export async function buildPreload(outDir = join(root, 'dist', 'preload')): Promise<string> {
  await build({
    configFile: false,
    logLevel: 'warn',
    root,
    build: {
      outDir,
      emptyOutDir: true,
      target: 'node22',
      minify: false,
      sourcemap: false,
      lib: { entry: join(root, 'src', 'preload', 'preload.ts'), formats: ['cjs'], fileName: () => 'preload.cjs' },
      rollupOptions: { external: ['electron'] },
    },
  });
  return join(outDir, 'preload.cjs');
}

if (import.meta.main) {
  console.log(`preload: ${await buildPreload()}`);
}
