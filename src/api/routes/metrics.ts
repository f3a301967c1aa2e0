/** `GET /metrics`: the daemon's Prometheus metrics (src/util/metrics.ts), admin credentials on TCP as everywhere. */
import type { FastifyPluginAsync } from 'fastify'
import type { Metrics } from '../../util/metrics'

export const metricsRoutes: FastifyPluginAsync<{ metrics: Metrics }> = async (app, { metrics }) => {
  app.get('/metrics', async (_request, reply) => {
    void reply.header('content-type', metrics.registry.contentType)
    return await metrics.registry.metrics()
  })
}
