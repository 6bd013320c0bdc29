import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))

/** @type {import('next').NextConfig} */
const nextConfig = {
  // A native addon cannot be bundled: Next.js must load it with Node's require at run time.
  serverExternalPackages: ['@yesgoddess/redis'],
  // This app is its own project (the repository around it has its own lockfile).
  turbopack: { root: here },
  outputFileTracingRoot: here,
}

export default nextConfig
