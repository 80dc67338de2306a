// ESLint 9 flat config: the recommended rules of ESLint and typescript-eslint
// over the sources and every test.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'coverage/', '.tap/', 'node_modules/', 'bench/', 'scripts/', 'plugins/', 'test/fixtures/', 'test/corpus/', 'test/fuzz/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['src/**/*.ts', 'test/**/*.ts'],
    rules: {
      // `_`-prefixed names are deliberately unused (positional parameters, destructuring)
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    files: ['test/**/*.ts', 'test/**/*.mjs'],
    rules: {
      // tables of hostile inputs build objects of any shape, and --json answers are read as any
      '@typescript-eslint/no-explicit-any': 'off',
      // tests look for the escape characters a hostile input carries
      'no-control-regex': 'off',
    },
  },
  {
    files: ['test/**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', URL: 'readonly', Buffer: 'readonly', console: 'readonly', globalThis: 'readonly' } },
  },
);
