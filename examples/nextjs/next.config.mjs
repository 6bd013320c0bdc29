/** @type {import('next').NextConfig} */
const nextConfig = {
  // A native addon cannot be bundled: Next.js must load it with Node's require at run time.
  serverExternalPackages: ['@yesgoddess/redis'],
}

export default nextConfig
