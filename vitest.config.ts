import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The examples import nmgrad by its package name; tests resolve it to the sources, so that an
// example and a test share one copy of every class.
const src = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  resolve: {
    alias: [
      { find: /^nmgrad$/, replacement: src('./src/index.ts') },
      { find: /^nmgrad\/text$/, replacement: src('./src/text/index.ts') },
      { find: /^nmgrad\/train$/, replacement: src('./src/train/index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
