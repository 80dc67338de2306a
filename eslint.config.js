// ESLint 9 flat config: the recommended rules of ESLint and typescript-eslint
// over the sources and the unit tests (the end-to-end tests are type-checked
// and formatted, not linted).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'coverage/', '.tap/', 'node_modules/', 'bench/', 'scripts/', 'plugins/', 'test/fixtures/', 'test/corpus/', 'test/fuzz/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['src/**/*.ts', 'test/unit/**/*.ts'],
    rules: {
      // `_`-prefixed names are deliberately unused (positional parameters, destructuring)
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    files: ['test/unit/**/*.ts'],
    rules: {
      // tables of hostile inputs build objects of any shape
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
);
