// ESLint (flat config): typescript-eslint's recommended rules, no import cycles, and the layering
// of src/ (README, "How the code is laid out"): lower layers never import higher ones.
import js from '@eslint/js';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/** Modules that wire or run things; nothing below them may import them. */
const HIGHER = ['**/schedule/**', '**/daemon.js', '**/http/**', '**/main.js', '**/demo/**', '**/check.js', '**/commands/**'];

const NO_FAKE = {
  group: ['@ga-collector/fake-google', '@ga-collector/fake-google/*', '**/fake-google/**'],
  message: 'production code never imports the fake Google (the workspace package @ga-collector/fake-google); only the demo does',
};
const NO_HIGHER = {
  group: HIGHER,
  message:
    'a lower layer (store, ga4, searchConsole, auth, net, time, errors, log, metrics) must not import the scheduler, daemon, HTTP server, commands or demo',
};
const LOWER = [
  'src/store/**',
  'src/ga4/**',
  'src/searchConsole/**',
  'src/auth/**',
  'src/net/**',
  'src/time.ts',
  'src/errors.ts',
  'src/log.ts',
  'src/metrics.ts',
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test-output/**', 'bench/dist/**', 'packages/*/dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  importX.flatConfigs.typescript,
  {
    files: ['**/*.ts'],
    settings: {
      'import-x/resolver-next': [
        createTypeScriptImportResolver({ project: ['tsconfig.json', 'bench/tsconfig.json', 'packages/*/tsconfig.json'], noWarnOnMultipleProjects: true }),
      ],
    },
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-constant-condition': ['error', { checkLoops: false }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
    },
  },
  // flat config: the last matching entry sets a rule, so each file group gets its whole list
  { files: ['src/**'], ignores: ['src/demo/**'], rules: { 'no-restricted-imports': ['error', { patterns: [NO_FAKE] }] } },
  { files: LOWER, rules: { 'no-restricted-imports': ['error', { patterns: [NO_FAKE, NO_HIGHER] }] } },
  // the fake Google stands on its own (packages/fake-google/README.md): nothing from outside its package
  {
    files: ['packages/fake-google/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['../../**', 'ga-collector', 'ga-collector/**'], message: 'the fake Google imports nothing from the product; keep its own copy' },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: { globals: { require: 'readonly', module: 'writable', process: 'readonly', console: 'readonly' } },
  },
);
