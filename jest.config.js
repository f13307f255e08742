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
  projects: [
    { ...base, displayName: 'unit', testMatch: ['<rootDir>/src/**/*.spec.ts', '<rootDir>/test/support/**/*.spec.ts'] },
    {
      ...base,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
    },
  ],
};
