// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Module boundaries from STYLE.md §3: which folder may import which at runtime. */
const boundary = (files, patterns) => ({
  files,
  rules: {
    '@typescript-eslint/no-restricted-imports': [
      'error',
      { patterns: patterns.map((group) => ({ ...group, allowTypeImports: true })) },
    ],
  },
});
const noBullmq = { group: ['bullmq', 'bullmq/*'], message: 'Only src/pipeline/ imports bullmq.' };
const noHttp = { group: ['**/http/*', 'express'], message: 'Only src/http/ serves HTTP.' };
const noPipeline = { group: ['**/pipeline/*'], message: 'pipeline/ is wired by main.ts only.' };
const noConfig = {
  group: ['**/config.js'],
  message: 'config is read by main.ts/cli.ts; pass typed slices.',
};
const noLedger = { group: ['**/ledger/*'], message: 'Not allowed across this boundary.' };
const noConnectors = { group: ['**/connectors/**'], message: 'Not allowed across this boundary.' };
const noRedis = { group: ['ioredis', '**/redis/*'], message: 'Pure module: no Redis here.' };

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'data/', 'coverage/', 'bin/', 'scripts/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true },
      ],
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { fixStyle: 'separate-type-imports' },
      ],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' },
      ],
    },
  },
  { files: ['eslint.config.js'], ...tseslint.configs.disableTypeChecked },
  {
    // Tests read untyped JSON bodies (supertest) and assert on their shape: that is their job.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
    },
  },
  boundary(
    ['src/model/**', 'src/observability/**', 'src/errors.ts'],
    [{ group: ['../*'], message: 'Imports nothing internal.' }],
  ),
  boundary(['src/ledger/**'], [noBullmq, noHttp, noPipeline, noConfig, noConnectors]),
  boundary(
    [
      'src/ledger/canonical.ts',
      'src/ledger/hash.ts',
      'src/ledger/merkle.ts',
      'src/ledger/checkpoint.ts',
      'src/ledger/block.ts',
      'src/ledger/verifier.ts',
      'src/ledger/cosignature.ts',
    ],
    [noRedis, noBullmq, noHttp, noPipeline, noConfig, noConnectors],
  ),
  boundary(
    ['src/vault/**', 'src/dedupe/**', 'src/policy/**', 'src/reconcile/**'],
    [noBullmq, noHttp, noPipeline, noConfig, noConnectors],
  ),
  boundary(
    ['connectors/**'],
    [
      noBullmq,
      noHttp,
      noPipeline,
      noConfig,
      noLedger,
      {
        group: ['**/src/pipeline/*', '**/src/http/*', '**/src/ledger/*'],
        message: 'Connectors stay out of the core.',
      },
    ],
  ),
  boundary(['src/http/**'], [noBullmq, noConfig]),
  // Witnesses follow the service over HTTP and repair through the ledger store: no queue, no
  // server, no CRM. Only the command module reads config (like src/cli.ts).
  boundary(['src/witness/**'], [noBullmq, noHttp, noPipeline, noConnectors]),
  boundary(
    ['src/witness/copy.ts', 'src/witness/witness.ts', 'src/witness/repair.ts'],
    [noBullmq, noHttp, noPipeline, noConnectors, noConfig, noRedis],
  ),
);
