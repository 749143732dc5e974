import { defineConfig } from 'vitest/config';

const shared = { exclude: ['node_modules/**', '.vigil/**'] };

export default defineConfig({
  test: {
    projects: [
      {
        // Pure code: operators, runtime, codecs, behaviour tests of whole pipelines without a broker.
        test: {
          ...shared,
          name: 'unit',
          include: ['**/*.test.ts'],
          exclude: [...shared.exclude, 'test/integration/**'],
          testTimeout: 30_000,
          // Type-level tests (test/types/): the shared excludes too, or the Node 24 copy in .vigil/ is checked as well.
          typecheck: {
            enabled: true,
            include: ['**/*.test-d.ts'],
            exclude: shared.exclude,
            tsconfig: './tsconfig.json',
          },
        },
      },
      {
        // Against the real local stack (Kafka, Apicurio, Redis, ClickHouse): one file at a time, they share it.
        test: {
          ...shared,
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // Fault drills kill services: they run on their own stack, by `npm run drills` (and CI), not in `npm test`.
          exclude: [...shared.exclude, 'test/integration/drills*.test.ts'],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
      {
        // Fault drills (test/integration/drills.test.ts): bring up an isolated stack, kill its services, check the books.
        test: {
          ...shared,
          name: 'drills',
          include: ['test/integration/drills*.test.ts'],
          fileParallelism: false,
          testTimeout: 600_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
