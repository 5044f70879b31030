// Lint: typescript-eslint's recommended rules, plus the pure-core rule of DESIGN.md §1.
import tseslint from 'typescript-eslint'

const ioModules = [
  'net',
  'tls',
  'dns',
  'dgram',
  'fs',
  'fs/promises',
  'http',
  'https',
  'http2',
  'child_process',
  'timers',
  'timers/promises',
  'worker_threads',
]
const ioPaths = ioModules
  .flatMap((m) => [m, `node:${m}`])
  .map((name) => ({ name, message: 'The pure core does no I/O (DESIGN.md §1): move this to src/node/.' }))

export default tseslint.config(
  { ignores: ['dist/', 'temp/', 'node_modules/', 'coverage/', 'test/lab/run/'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/node/**', 'src/cli/**', 'src/nodemailer/**', 'src/redis/**'],
    rules: {
      'no-restricted-imports': ['error', { paths: ioPaths }],
      'no-restricted-globals': [
        'error',
        { name: 'setTimeout', message: 'No timers in the pure core.' },
        { name: 'setInterval', message: 'No timers in the pure core.' },
        { name: 'process', message: 'No process state in the pure core.' },
      ],
    },
  },
  // Layers inside the core (DESIGN.md §5): x509 sits below tlsa, dane, pin and policy and imports none of them;
  // a helper two areas share lives in a neutral module (src/bytes.ts). Repeats ioPaths: a later block replaces the rule.
  {
    files: ['src/x509/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: ioPaths,
          patterns: [
            {
              group: ['../tlsa/*', '../dane/*', '../pin/*', '../policy/*', '../smtp/*', '../node/*', '../cli/*'],
              message: 'src/x509 is the lowest area of the core: move what you need to src/bytes.ts (DESIGN.md §5).',
            },
          ],
        },
      ],
    },
  },
)
