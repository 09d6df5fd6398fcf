import js from '@eslint/js';
import prettierRecommended from 'eslint-plugin-prettier/recommended';
import react from 'eslint-plugin-react';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'node_modules',
      'labextension/lib',
      'dotnb/labextension',
      '.venv',
      'test-artifacts',
      'coverage',
      '**/*.js',
      '**/*.d.ts'
    ]
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  react.configs.flat.recommended,
  {
    files: ['**/*.ts', '**/*.tsx', '**/*.mts', '**/*.mjs'],
    languageOptions: {
      globals: { ...globals.browser, ...globals.node }
    },
    settings: { react: { version: '18.2' } },
    rules: {
      '@typescript-eslint/naming-convention': [
        'error',
        {
          selector: 'interface',
          format: ['PascalCase'],
          custom: { regex: '^I[A-Z]', match: true }
        }
      ],
      '@typescript-eslint/no-unused-vars': ['warn', { args: 'none' }],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-namespace': 'off',
      'react/prop-types': 'off',
      // Run data must never reach the DOM as HTML.
      'react/no-danger': 'error',
      'no-restricted-properties': [
        'error',
        {
          property: 'innerHTML',
          message: 'Render run data as text (JSX or textContent).'
        },
        {
          property: 'outerHTML',
          message: 'Render run data as text (JSX or textContent).'
        },
        {
          property: 'insertAdjacentHTML',
          message: 'Render run data as text (JSX or textContent).'
        }
      ],
      curly: ['error', 'all'],
      eqeqeq: 'error',
      'prefer-arrow-callback': 'error'
    }
  },
  prettierRecommended
);
