// ESLint 9 flat config: `make lint-js` (part of `make lint`, so of `make test`) lints every
// JavaScript file of the project with it.
import js from '@eslint/js';
import globals from 'globals';

// What an AudioWorkletGlobalScope offers: the processors see no window, document or fetch.
const audioWorklet = {
  registerProcessor: 'readonly',
  AudioWorkletProcessor: 'readonly',
  sampleRate: 'readonly',
  currentTime: 'readonly',
};

export default [
  // What git ignores and holds JavaScript of others (Django admin's, in the venv; collectstatic's).
  { ignores: ['.venv/', '.lock-venv/', 'staticfiles/', 'var/', 'build/', 'dist/', 'test-results/'] },
  js.configs.recommended,
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  // The pages' ES modules (static/js) and plain scripts the admin loads (assistant/static).
  {
    files: ['static/js/**/*.js'],
    ignores: ['static/js/worklets/**'],
    languageOptions: { ecmaVersion: 2022, sourceType: 'module', globals: globals.browser },
  },
  {
    files: ['assistant/static/**/*.js'],
    languageOptions: { ecmaVersion: 2022, sourceType: 'script', globals: globals.browser },
  },
  // One AudioWorklet processor per file, loaded with audioWorklet.addModule() (ES modules).
  {
    files: ['static/js/worklets/**/*.js'],
    languageOptions: { ecmaVersion: 2022, sourceType: 'module', globals: audioWorklet },
  },
  // This file itself, run by Node.
  {
    files: ['eslint.config.js'],
    languageOptions: { ecmaVersion: 2022, sourceType: 'module', globals: globals.node },
  },
];
