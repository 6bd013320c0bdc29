'use strict'
// `npm run redis:test`: the seed's test script, through jest, against REDIS_URL
// or a private redis-server started for the run.
module.exports = {
  testEnvironment: 'node',
  modulePathIgnorePatterns: ['<rootDir>/examples/'],
  testMatch: ['<rootDir>/__test__/redis-test/**/*.test.js'],
  globalSetup: '<rootDir>/__test__/support/global-setup.js',
  globalTeardown: '<rootDir>/__test__/support/global-teardown.js',
  testTimeout: 30000,
  maxWorkers: 1,
}
