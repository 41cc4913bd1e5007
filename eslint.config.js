// ESLint over the TypeScript sources with type information (typescript-eslint's
// recommendedTypeChecked), plain recommended rules over the .mjs scripts, and the boundary of the
// pure core. `npm run lint`; .ci/run runs it before the tests.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores(['dist/', 'node_modules/', 'coverage/', '.bench/', 'test/fixtures/', 'modelgate-demo/']),
  js.configs.recommended,
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
