// `@/lib/redis` in this app (tsconfig.json `paths`): the package itself, as an
// application's own src/lib/redis/index.ts re-exports it. The routes import
// `@/lib/redis` only, so the benchmark's ioredis copy of this app
// (examples/nextjs-ioredis/) swaps this module and keeps the routes as they are.
export * from '@yesgoddess/redis'
