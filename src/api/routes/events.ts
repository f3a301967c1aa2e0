/**
 * The S3/MinIO event webhook (spec/fsx-dra.md §27–28):
 *   HEAD /events/s3   MinIO's liveness probe: 200
 *   POST /events/s3   one S3 or MinIO notification (JSON; MinIO may send it as text/plain)
 * Authenticated by the shared secret of the bucket(s) the notification is about (bucket table
 * field `sharedSecret`), sent as `Authorization: Bearer <secret>` or as the bare secret, as MinIO
 * sends `auth_token`. The admin credentials are not needed (and not enough): the sender is a
 * storage server. A notification is answered 200 only once its changes are durably queued;
 * anything wrong (bad JSON, not a notification, unknown bucket: 400; wrong secret: 401) changes
 * nothing.
 */
import type { FastifyPluginAsync } from 'fastify'
import type { BucketTable } from '../../repo/bucket-table'
import type { ImportQueue } from '../../sync/import-queue'
import { EventFormatError, parseEventBody } from '../../sync/events'
import type { Metrics } from '../../util/metrics'
import type { Logger } from '../../daemon/logger'
import { constantTimeEqual } from '../sigv4'
import { ApiError, badRequest } from '../errors'

export const EVENTS_PATH = '/events/s3'

export const eventRoutes: FastifyPluginAsync<{ table: BucketTable, queue: ImportQueue, metrics: Metrics, log: Logger }> = async (app, { table, queue, metrics, log }) => {
  app.head(EVENTS_PATH, async () => '')

  app.post(EVENTS_PATH, async (request) => {
    let body = request.body
    if (typeof body === 'string') {
      try { body = JSON.parse(body) } catch { throw badRequest('body', 'the body is not valid JSON') }
    }
    let parsed
    try {
      parsed = parseEventBody(body)
    } catch (err) {
      if (err instanceof EventFormatError) throw badRequest('body', err.message)
      throw err
    }
    if (parsed.buckets.length === 0) throw badRequest('body', 'the notification names no bucket')
    const secret = (request.headers.authorization ?? '').replace(/^Bearer\s+/i, '').trim()
    for (const name of parsed.buckets) {
      const entry = await table.get(name)
      if (entry === undefined) throw badRequest('bucket', `bucket ${name} is not in the bucket table`)
      if (entry.sharedSecret === '' || secret === '' || !constantTimeEqual(secret, entry.sharedSecret)) {
        throw new ApiError(401, { error: 'Unauthorized', message: `the request does not carry the shared secret of bucket ${name}` })
      }
    }
    if (parsed.test) return { test: true }
    await queue.enqueue(parsed.changes)
    metrics.importEvents.inc({ source: 'webhook', result: 'received' }, parsed.changes.length)
    log.debug('S3 events queued', { buckets: parsed.buckets, changes: parsed.changes.length, ignored: parsed.ignored })
    return { queued: parsed.changes.length, ignored: parsed.ignored }
  })
}
