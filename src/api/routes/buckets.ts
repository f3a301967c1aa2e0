/**
 * The bucket API:
 *   POST /add-mod-del-bucket          InfinStor's form-encoded add / modify / delete (§25.2)
 *   GET  /api/buckets                 { buckets: [BucketView…] }, name order, no secrets
 *   GET  /api/buckets/:name           BucketView, or 404
 *   POST /api/buckets/:name/test      HeadBucket + ListObjectsV2 through the bucket's client
 * Replies to add/modify carry the new view (never the secrets sent); changes are logged by name
 * and operation only.
 */
import type { FastifyPluginAsync } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import type { Logger } from '../../daemon/logger'
import { BucketFormSchema, bucketView } from '../../repo/bucket-entry'
import type { BucketTable } from '../../repo/bucket-table'
import type { S3Clients } from '../../repo/s3-clients'
import { probeBucket } from '../../repo/bucket-probe'
import { notFound } from '../errors'
import { bucketNameProblem } from '../../repo/bucket-name'

/** A bucket name in a URL: refused (400, field "name") when S3 would refuse it. */
const NameParams = z.object({
  name: z.string().superRefine((name, ctx) => {
    const problem = bucketNameProblem(name)
    if (problem !== undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `"${name}" is not a valid S3 bucket name: ${problem}` })
  })
})

export const bucketRoutes: FastifyPluginAsync<{ table: BucketTable, clients: S3Clients, log: Logger }> = async (fastify, { table, clients, log }) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>()

  app.post('/add-mod-del-bucket', { schema: { body: BucketFormSchema } }, async (request) => {
    const change = await table.apply(request.body)
    log.info('bucket table changed', { op: change.op, bucketname: change.op === 'delete' ? change.bucketname : change.entry.bucketname })
    if (change.op === 'delete') return { op: 'delete', bucketname: change.bucketname }
    return { op: change.op, bucket: bucketView(change.entry) }
  })

  app.get('/api/buckets', async () => ({ buckets: (await table.list()).map(bucketView) }))

  app.get('/api/buckets/:name', { schema: { params: NameParams } }, async (request) => {
    const entry = await table.get(request.params.name)
    if (entry === undefined) throw notFound(`bucket ${request.params.name} is not in the bucket table`, 'bucketname')
    return bucketView(entry)
  })

  app.post('/api/buckets/:name/test', { schema: { params: NameParams } }, async (request) => {
    const result = await probeBucket(clients, request.params.name)
    log.info('bucket tested', { bucketname: result.bucketname, reachable: result.reachable, authorized: result.authorized, latencyMs: result.latencyMs, error: result.error })
    return result
  })
}
