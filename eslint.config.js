// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import noOnlyTests from 'eslint-plugin-no-only-tests';

/** Files that must stay pure (no I/O): the planner side of "pure planner, effectful executor". */
const pureFiles = [
  'lib/planner.ts',
  'lib/scheduler.ts',
  'lib/graph.ts',
  'lib/fingerprint.ts',
  'lib/config/parse.ts',
  'lib/config/rules.ts',
  'lib/config/diagnostics.ts',
  'lib/config/schema.ts',
  'lib/config/limits.ts',
  'lib/kind.ts',
  'lib/outputs.ts',
  'lib/layout.ts',
  'lib/io/state/keys.ts',
  'lib/io/state/state-checks.ts',
  'lib/sizing.ts',
  'lib/report-html/model.ts',
  'lib/shell-command.ts',
];

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'cache/**',
      'bench/results/**',
      'bench/data/**',
      'examples/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'no-only-tests': noOnlyTests },
    rules: {
      'no-only-tests/no-only-tests': 'error',
      'no-console': 'error',
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true },
      ],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
    },
  },
  {
    files: pureFiles,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['node:fs', 'node:fs/*', 'fs', 'fs/*', 'node:child_process'],
              message: 'pure module: no I/O',
            },
            {
              group: ['@aws-sdk/*', 'zx', '@duckdb/*', '@mongodb-js/*'],
              message: 'pure module: no I/O',
            },
          ],
        },
      ],
    },
  },
  {
    // The task boundary: a kind's files import lib/ only through lib/task-api.ts, and no other
    // kind's folder (their own folder's files are theirs). Dynamic import() too.
    files: ['tasks/*/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\.\\./(?!\\.\\./lib/task-api\\.js$)',
              message:
                "tasks import lib/ only through lib/task-api.ts (re-export what a task needs there), and no other kind's folder",
            },
          ],
        },
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector: 'ImportExpression > Literal[value=/^\\.\\.\\u002F/]',
          message:
            "tasks import lib/ only through lib/task-api.ts (a dynamic import of a file outside the kind's folder)",
        },
      ],
    },
  },
  {
    // Only the printer, the CLI entry, scripts, benchmarks and tests may write to the console.
    files: ['lib/report.ts', 'lib/cli.ts', 'scripts/**', 'bench/**', 'test/**', 'bin/**'],
    rules: { 'no-console': 'off' },
  },
  { files: ['eslint.config.js', 'bin/**'], ...tseslint.configs.disableTypeChecked },
  { files: ['bin/**'], languageOptions: { globals: { process: 'readonly' } } },
);
