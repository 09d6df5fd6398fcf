import { defineConfig } from 'vitest/config';

// Run from the repository root: `npm test`.
export default defineConfig({
  test: {
    environment: 'jsdom',
    include: ['labextension/test/**/*.test.{ts,tsx}'],
    setupFiles: ['labextension/test/setup.ts'],
    // Published as ESM with extensionless imports: let Vite resolve them.
    server: {
      deps: {
        inline: [/@jupyter\/web-components/, /@jupyter\/react-components/]
      }
    }
  }
});
