// Lint rules, and the import matrix that keeps Tether's trust boundaries in
// the folder layout (shared DESIGN.md, "Layout"). test/architecture.test.ts
// checks the same matrix without ESLint, so a violation fails `npm test` twice.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const nodeBuiltins = (names) => names.flatMap((n) => [n, `node:${n}`, `node:${n}/*`, `${n}/*`]);

const electronOnlyInMain = {
  name: 'electron',
  message: "'electron' may be imported only in src/main and src/preload; put logic in src/host and inject it.",
};

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'release/**', 'renderer/dist/**', 'test-results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-imports': ['error', { paths: [electronOnlyInMain] }],
    },
  },
  {
    files: ['src/common/**'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [electronOnlyInMain],
        patterns: [{ group: ['node:*'], message: 'src/common is pure TypeScript: no node:* (it runs in the renderer and the agent too).' }],
      }],
    },
  },
  {
    files: ['src/agent/**'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [electronOnlyInMain],
        patterns: [{
          group: nodeBuiltins(['fs', 'fs/promises', 'child_process', 'net', 'http', 'https', 'http2', 'worker_threads', 'dgram', 'tls', 'cluster', 'vm']),
          message: 'src/agent is the untrusted process: it reaches files, commands and the network only through the host (ACP).',
        }],
      }],
    },
  },
  {
    files: ['src/main/**', 'src/preload/**'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    files: ['renderer/**'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      'no-restricted-imports': ['error', {
        paths: [electronOnlyInMain],
        patterns: [{ group: ['node:*', '**/src/host/**', '**/src/main/**', '**/src/agent/**'], message: 'renderer imports src/common only; it reaches the host through the preload API.' }],
      }],
    },
  },
);
