'use strict'
module.exports = {
  testEnvironment: 'node',
  modulePathIgnorePatterns: ['<rootDir>/examples/'],
  testMatch: ['<rootDir>/__test__/**/*.test.js'],
  testPathIgnorePatterns: ['<rootDir>/__test__/redis-test/'],
  globalSetup: '<rootDir>/__test__/support/global-setup.js',
  globalTeardown: '<rootDir>/__test__/support/global-teardown.js',
  testTimeout: 30000,
  maxWorkers: 2,
}
