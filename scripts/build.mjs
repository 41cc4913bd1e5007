// Bundles the CLI (code-split, so each command loads only what it uses) and the Action
// (one self-contained file, committed, as the runner executes it).
import { build } from 'esbuild';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';

const common = {
  bundle: true,
  platform: 'node',
  target: 'node24',
  format: 'esm',
  legalComments: 'none',
  logLevel: 'warning',
  // Some dependencies (the AWS SDK, @actions/core's transitive deps) still call require().
  banner: { js: "import { createRequire as __mgCreateRequire } from 'node:module'; const require = __mgCreateRequire(import.meta.url);" },
};

await rm('dist/chunks', { recursive: true, force: true });

const cliEntries = ['src/cli.ts', 'src/index.ts', 'src/demo.ts'].filter((f) => existsSync(f));
await build({
  ...common,
  entryPoints: cliEntries,
  outdir: 'dist',
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
});

await build({
  ...common,
  entryPoints: ['src/action.ts'].filter((f) => existsSync(f)),
  outfile: 'dist/action.js',
});
