'use strict'
// What the Edge runtime (and other worker runtimes) gets for
// `@yesgoddess/redis`: package.json's `edge-light`, `workerd` and `worker`
// export conditions point here, so that a bundler for them never pulls in the
// native addon or `node:net`, and importing it throws one clear error.
// index.js throws the same error when it is evaluated in the Edge runtime.
// This file requires nothing.

const error = new Error(
  '@yesgoddess/redis runs only in the Node.js runtime: it is a native addon that needs TCP sockets, ' +
    'which the Edge runtime does not have. In the Next.js route (or page, or layout) that imports it, ' +
    "directly or through @/lib/redis, add `export const runtime = 'nodejs'` (and never 'edge'), " +
    "and list the package in next.config: `serverExternalPackages: ['@yesgoddess/redis']`.",
)
error.code = 'EEDGERUNTIME'
throw error
