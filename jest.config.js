const { availableParallelism } = require('node:os');

// Jest 30 cannot load Nest 12's ESM-only packages through ts-jest; @swc/jest transforms both our
// TypeScript and @nestjs/* (see README "Tests").
const base = {
  moduleFileExtensions: ['js', 'json', 'ts'],
  rootDir: __dirname,
  testEnvironment: 'node',
  transform: {
    '^.+\\.(t|j)s$': [
      '@swc/jest',
      {
        jsc: {
          parser: { syntax: 'typescript', decorators: true },
          transform: { legacyDecorator: true, decoratorMetadata: true },
          target: 'es2022',
        },
        module: { type: 'commonjs' },
      },
    ],
  },
  transformIgnorePatterns: ['/node_modules/(?!@nestjs/)'],
  // Stops what a failed test left running, so that Jest exits after a failure too (see the file).
  setupFilesAfterEnv: ['<rootDir>/test/support/jest-setup.ts'],
};

module.exports = {
  // testTimeout is a global option in Jest 30 (ignored inside a project); e2e specs boot real processes.
  testTimeout: 60000,
  // Jest's default is one worker per core less one: a single worker on a 2-core machine. The e2e files
  // mostly wait on the processes they start and on timers (load average about 0.6 with one worker), so
  // two files at a time take the whole run from 663 s to 346 s there, and nothing changes on more cores.
  maxWorkers: Math.max(2, availableParallelism() - 1),
  projects: [
    { ...base, displayName: 'unit', testMatch: ['<rootDir>/src/**/*.spec.ts', '<rootDir>/test/support/**/*.spec.ts'] },
    {
      ...base,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
    },
  ],
};
