// Bundles the CLI (code-split, so each command loads only what it uses) and the Action
// (one self-contained file, committed, as the runner executes it).
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import standaloneCode from 'ajv/dist/standalone/index.js';
import { createAjv } from '../src/manifest/compile-schemas.ts';

// The schemas compiled now, as code (ajv standalone, configured by src/manifest/compile-schemas.ts,
// which Node loads with its types stripped), so that no command compiles one when it starts. The
// bundles take this module in place of the run-time compiler; each kind's validator is built on first use.
const GENERATED = 'dist/.generated/compile-schemas.mjs';
{
  const ajv = createAjv({ source: true });
  const files = { Registry: 'registry', Model: 'model', ModelVersion: 'model-version', PromotionPolicy: 'promotion-policy', ModelAliases: 'model-aliases' };
  for (const [kind, file] of Object.entries(files)) ajv.addSchema(JSON.parse(readFileSync(`schemas/${file}.schema.json`, 'utf8')), kind);
  const code = standaloneCode.default ?? standaloneCode;
  const source = code(ajv, Object.fromEntries(Object.keys(files).map((k) => [k, k])));
  await mkdir('dist/.generated', { recursive: true });
  // CommonJS, as ajv writes it (require() of its run-time helpers): Node, esbuild and vitest all load it alike.
  await writeFile('dist/.generated/validators.cjs', source);
  await writeFile(GENERATED, "import validators from './validators.cjs';\nexport function compileSchema(kind) { return validators[kind]; }\n");
}
const precompiledSchemas = {
  name: 'precompiled-schemas',
  setup(b) {
    b.onResolve({ filter: /[\\/]compile-schemas\.js$/ }, () => ({ path: resolve(GENERATED) }));
  },
};

// What a cached parse depends on (the catalog, src/registry/catalog.ts, keeps the loader's result
// for each version file): the loader's sources (src/manifest, and the path rules it imports from
// src/registry/layout.ts) and the schemas. A build with other ones does not trust a catalog
// another build wrote, even under the same package version.
const loaderId = (() => {
  const hash = createHash('sha256');
  const files = [
    ...readdirSync('src/manifest')
      .filter((f) => f.endsWith('.ts'))
      .map((f) => `src/manifest/${f}`),
    'src/registry/layout.ts',
    ...readdirSync('schemas').map((f) => `schemas/${f}`),
  ];
  for (const f of files.sort()) hash.update(`${f}\0`).update(readFileSync(f)).update('\0');
  return hash.digest('hex').slice(0, 16);
})();

const common = {
  bundle: true,
  define: { __MODELGATE_LOADER_ID__: JSON.stringify(loaderId) },
  platform: 'node',
  target: 'node24',
  format: 'esm',
  legalComments: 'none',
  logLevel: 'warning',
  plugins: [precompiledSchemas],
  // Some dependencies (the AWS SDK, bundled CommonJS packages) still call require().
  banner: { js: "import { createRequire as __mgCreateRequire } from 'node:module'; const require = __mgCreateRequire(import.meta.url);" },
};

await rm('dist/chunks', { recursive: true, force: true });

// The CLI's imports of Node's built-in modules (`import { x } from 'node:fs'` in src/) read the
// module object through process.getBuiltinModule, each name once where it is used: an ES import of
// a built-in makes a module facade that reads every export first, loading the lazy ones (node:fs's
// loads the streams), about 7 ms of every command's start for the dozen built-ins a command
// imports. The same objects either way; bundled packages keep their require() (the banner).
const builtinsWithoutFacades = {
  name: 'builtins-without-facades',
  setup(b) {
    b.onResolve({ filter: /^node:/ }, (args) =>
      args.kind === 'import-statement' && !args.importer.includes('node_modules') ? { path: args.path, namespace: 'builtin' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'builtin' }, (args) => {
      const names = Object.keys(process.getBuiltinModule(args.path)).filter((n) => /^[A-Za-z_$][\w$]*$/.test(n) && n !== 'default');
      const lines = [`const m = process.getBuiltinModule(${JSON.stringify(args.path)});`, 'export default m;'];
      // Pure: esbuild drops the names no module uses; a used one is read once, when its chunk loads.
      for (const n of names) lines.push(`export const ${n} = /* @__PURE__ */ (() => m.${n})();`);
      return { contents: lines.join('\n'), loader: 'js' };
    });
  },
};

const cliEntries = ['src/cli.ts', 'src/index.ts', 'src/demo.ts'].filter((f) => existsSync(f));
await build({
  ...common,
  plugins: [...common.plugins, builtinsWithoutFacades],
  banner: { js: "const require = process.getBuiltinModule('node:module').createRequire(import.meta.url);" },
  entryPoints: cliEntries,
  outdir: 'dist',
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
});

// The Action: dist/action.js is the entry the runner runs; what a run needs only after its first
// request (the gate, the AWS SDK, the validators, YAML: dynamic imports) goes to
// dist/action-chunks/, committed with it, so a start compiles the GitHub client and little else.
// Minified: compiling is most of a start.
await rm('dist/action-chunks', { recursive: true, force: true });
await build({
  ...common,
  entryPoints: existsSync('src/action.ts') ? { action: 'src/action.ts' } : {},
  outdir: 'dist',
  splitting: true,
  chunkNames: 'action-chunks/[name]-[hash]',
  minify: true,
});

// The registry pages' assets (SPEC v3 §11): one script with uPlot and the `--where` parser, and
// one stylesheet (uPlot's and the pages'); `modelgate pages` copies them, nothing is fetched at view time.
await mkdir('dist/pages-assets', { recursive: true });
await build({
  entryPoints: ['src/pages/client/app.ts'],
  bundle: true,
  platform: 'browser',
  format: 'iife',
  target: 'es2022',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
  outfile: 'dist/pages-assets/app.js',
});
await writeFile(
  'dist/pages-assets/app.css',
  readFileSync('node_modules/uplot/dist/uPlot.min.css', 'utf8') + '\n' + readFileSync('src/pages/style.css', 'utf8'),
);
