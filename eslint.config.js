// ESLint over the TypeScript sources with type information (typescript-eslint's
// recommendedTypeChecked), plain recommended rules over the .mjs scripts, eslint-plugin-regexp
// (no regular expression that backtracks super-linearly: SPEC §14), and the boundary of the pure
// core. `npm run lint`; .ci/run runs it before the tests.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import regexp from 'eslint-plugin-regexp';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** Files of the pure core (SPEC "pure core, I/O at the edges"); see the no-restricted-imports block below. */
const PURE_CORE = [
  'src/errors.ts',
  'src/error-codes.ts',
  'src/manifest/**/*.ts',
  'src/gate/**/*.ts',
  'src/deploy/{plan,render,yaml-splice,kustomization,input,resources}.ts',
  'src/promote/{plan,change,args}.ts',
  'src/query/**/*.ts',
  'src/registry/layout.ts',
  'src/store/{layout,directory-digest}.ts',
  'src/pages/{html,render,lineage-graph,search-index}.ts',
  'src/import/{gto,dvc}.ts',
  'src/mlflow/records.ts',
];
/** The gate's adapters: git history and the merge of a pull request, the store's verifier and scanner. */
const GATE_ADAPTERS = ['src/gate/from-git.ts', 'src/gate/history.ts', 'src/gate/store-verifier.ts', 'src/gate/store-scanner.ts'];

/** git behind one port: no raw git argument lists outside src/git/ (no-restricted-syntax selectors, shared by two blocks below). */
const GIT_BEHIND_PORT = [
  {
    selector: "CallExpression[arguments.0.type='Literal'][arguments.0.value='git']",
    message: 'git runs behind GitRepo (src/git/repo.ts): add a named method there',
  },
  {
    selector: "CallExpression[callee.property.name=/^(run|out|records)$/][arguments.0.type='ArrayExpression']",
    message: 'no raw git argument lists outside src/git/: add a named method to GitRepo',
  },
];

export default defineConfig(
  globalIgnores(['dist/', 'node_modules/', 'coverage/', '.bench/', 'test/fixtures/', 'modelgate-demo/', '.venv/', '.venv-import/', '.schemathesis/']),
  js.configs.recommended,
  {
    // Only the rules about cost, over the product's code: input reaches most of its regular
    // expressions (manifests, flags, metrics files, --where), and one that backtracks
    // super-linearly lets input make the loader or the gate slow (SPEC §14). The plugin's style
    // rules are left out; tests and scripts match their own output.
    files: ['src/**/*.ts'],
    plugins: { regexp },
    rules: {
      'regexp/no-super-linear-backtracking': 'error',
      'regexp/no-super-linear-move': 'error',
      'regexp/no-misleading-capturing-group': 'error',
    },
  },
  {
    rules: {
      // `catch {}` is how this code says "absent is an answer" (a file that may not exist, best-effort cleanup).
      'no-empty': ['error', { allowEmptyCatch: true }],
      // `_name` marks a binding kept for its position (a destructured rest, a callback signature).
      'no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
    },
  },
  {
    files: ['**/*.ts', '**/*.mts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // A port's adapter is `async` without awaiting so that it throws as a rejection, like the real adapter does.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
    },
  },
  {
    // git behind one port: GitRepo (src/git/) names every git command the product runs, with its
    // typed errors, network bounds and credential redaction; a raw argument list elsewhere would
    // bypass them. src/local/ (the loopback GitHub emulator and git http-backend, test and demo
    // infrastructure) keeps its own synchronous plumbing.
    files: ['src/**/*.ts'],
    ignores: ['src/git/**', 'src/local/**'],
    rules: {
      'no-restricted-syntax': ['error', ...GIT_BEHIND_PORT],
    },
  },
  {
    // The pure core: manifests, the gate's evaluation, plans, pin rendering. It takes plain data (or a
    // port's interface, as a type) and returns plain data; the adapters that read git, the store or
    // GitHub live outside it. CONTRIBUTING.md has the folder map.
    files: PURE_CORE,
    ignores: GATE_ADAPTERS,
    rules: {
      // Nor does it reach the network, the environment or a module chosen at run time: those are
      // the edge's to pass in (this block's no-restricted-syntax replaces the one above, so it repeats it).
      'no-restricted-syntax': [
        'error',
        ...GIT_BEHIND_PORT,
        { selector: 'ImportExpression', message: 'the pure core loads no module at run time: the edge imports it and passes it in' },
      ],
      'no-restricted-globals': ['error', { name: 'fetch', message: 'the pure core does no I/O: the network lives behind a port' }],
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'env', message: 'the pure core reads no environment: take the value as an argument' },
        { object: 'globalThis', property: 'fetch', message: 'the pure core does no I/O: the network lives behind a port' },
      ],
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: ['fs', 'fs/promises', 'child_process', 'net', 'http', 'https']
            .flatMap((m) => [m, `node:${m}`])
            .map((name) => ({ name, message: 'the pure core does no I/O: take the data, or a port, as an argument' })),
          patterns: [
            { group: ['@octokit/*', '@aws-sdk/*'], message: 'the pure core talks to no service: GitHub and S3 live behind ports (src/github, src/store)' },
            {
              group: ['**/git/*', '**/github/*', '**/local/*'],
              message: 'git and GitHub are adapters: take their data or a port instead',
              allowTypeImports: true,
            },
            {
              // gitignore-style patterns: no brace expansion.
              group: [
                ...['store', 's3-store', 'file-store', 'fetch', 'put', 'gc', 'digest', 'progress'].map((f) => `**/store/${f}.js`),
                ...['source', 'snapshot', 'catalog', 'history', 'template'].map((f) => `**/registry/${f}.js`),
              ],
              message: 'an I/O module: import its interface as a type (`import type`), or the pure helper it builds on',
              allowTypeImports: true,
            },
          ],
        },
      ],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // Tests parse CLI, API and file output (JSON.parse, YAML) and assert its shape with expect(): the `any` is the point.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs', 'vitest.config.ts'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: { ...globals.node } },
  },
);
