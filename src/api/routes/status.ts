/**
 * `GET /api/status`: who this daemon is, where its API listens, and how far behind S3 it is (for
 * `s3link status`, the dashboard).
 */
import type { FastifyPluginAsync } from 'fastify'
import type { CacheStatus } from '../../content/cache'

export interface StatusInfo { id: string, name: string, mountpoint: string, apiUrl: string }

/** The sync queues: what has not reached S3 yet, and what S3 told us that is not applied yet. */
export interface QueueStatus {
  export: { queued: number, oldestAgeSeconds: number, bytesPending: number, failures: number }
  import: { queued: number, oldestAgeSeconds: number }
  /** The local cache (src/content/cache.ts); answered as the status's own `cache` field, not under queues. */
  cache?: CacheStatus
}

export const statusRoutes: FastifyPluginAsync<{ status: () => StatusInfo, queues: () => Promise<QueueStatus> }> = async (app, { status, queues }) => {
  app.get('/api/status', async () => {
    const { cache, ...sync } = await queues()
    return { ...status(), queues: sync, ...(cache !== undefined ? { cache } : {}) }
  })
}
