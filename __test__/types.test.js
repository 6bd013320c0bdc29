'use strict'
// index.d.ts type-checks the public API as an application uses it (strict, isolatedModules).
const { execFileSync } = require('node:child_process')
const path = require('node:path')

test('index.d.ts type-checks an application that uses the package', () => {
  const tsc = require.resolve('typescript/bin/tsc')
  let output = ''
  try {
    output = execFileSync(process.execPath, [tsc, '-p', path.join(__dirname, 'types', 'tsconfig.json')], { encoding: 'utf8' })
  } catch (error) {
    output = `${error.stdout}${error.stderr}`
    throw new Error(`tsc failed:\n${output}`)
  }
  expect(output.trim()).toBe('')
}, 60000)
