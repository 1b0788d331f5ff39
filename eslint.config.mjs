// Optional: `npx eslint static/js` (needs eslint and @eslint/js; not part of `make test`).
import js from '@eslint/js';

const browser = {
  window: 'readonly', document: 'readonly', location: 'readonly', history: 'readonly',
  navigator: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly',
  performance: 'readonly', URL: 'readonly', WebSocket: 'readonly', EventTarget: 'readonly',
  CustomEvent: 'readonly', AudioContext: 'readonly', AudioWorkletNode: 'readonly',
};

export default [
  js.configs.recommended,
  {
    files: ['static/js/**/*.js'],
    languageOptions: { ecmaVersion: 2022, sourceType: 'module', globals: browser },
  },
  {
    files: ['static/js/worklets/*-processor.js'],
    languageOptions: {
      globals: {
        registerProcessor: 'readonly',
        AudioWorkletProcessor: 'readonly',
        sampleRate: 'readonly',
        currentTime: 'readonly',
      },
    },
  },
];
