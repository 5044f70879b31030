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
    ignores: ['src/node/**', 'src/cli/**', 'src/nodemailer/**'],
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
)
