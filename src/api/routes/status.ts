/** `GET /api/status`: who this daemon is and where its API listens (for `s3link status`, the dashboard). */
import type { FastifyPluginAsync } from 'fastify'

export interface StatusInfo { id: string, name: string, mountpoint: string, apiUrl: string }

export const statusRoutes: FastifyPluginAsync<{ status: () => StatusInfo }> = async (app, { status }) => {
  app.get('/api/status', async () => status())
}
