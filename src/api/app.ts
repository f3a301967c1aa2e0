/**
 * One fastify application per listener: the Unix socket's (trusted) and the TCP port's (admin
 * credentials required, see auth.ts). Both have the same routes, body limit and error replies.
 *
 * Validation: request schemas are zod schemas (fastify-type-provider-zod's validator compiler), the
 * library the config already uses, so a route's types come from its schema; the error handler
 * turns the first zod issue into `400 { error: 'BadRequest', field, message }` (errors.ts).
 *
 * Bodies: the preParsing hook reads the body once, up to BODY_LIMIT (larger: 413), and keeps the
 * raw bytes for SigV4 verification before handing them on to the content-type parsers (JSON,
 * and form-encoded through @fastify/formbody).
 */
import { Readable } from 'node:stream'
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify'
import formbody from '@fastify/formbody'
import { type ZodTypeProvider, hasZodFastifySchemaValidationErrors, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod'
import type { Logger } from '../daemon/logger'
import { ApiError } from './errors'
import { type AdminCredentials, authHooks } from './auth'
import { BucketFieldError, BucketNotFoundError } from '../repo/bucket-entry'
import { bucketRoutes } from './routes/buckets'
import { statusRoutes, type QueueStatus, type StatusInfo } from './routes/status'
import { dashboardRoutes } from './routes/dashboard'
import type { BucketTable } from '../repo/bucket-table'
import type { S3Clients } from '../repo/s3-clients'
import { fsxProtocol } from './fsx/protocol'
import { eventRoutes } from './routes/events'
import { metricsRoutes } from './routes/metrics'
import type { ImportQueue } from '../sync/import-queue'
import type { Metrics } from '../util/metrics'
import type { Operation } from './fsx/operations'
import { hsmRoutes } from './routes/hsm'
import type { FileSystem, Loader } from '../fs/filesystem'
import type { TreeExport } from '../sync/task-export'

export const BODY_LIMIT = 1024 * 1024

export interface ApiServices {
  table: BucketTable
  clients: S3Clients
  status: () => StatusInfo
  queues: () => Promise<QueueStatus>
  /** The FSx operations served on `POST /` (src/api/fsx). */
  fsx: Record<string, Operation>
  /** Where S3 change notifications go (POST /events/s3). */
  importQueue: ImportQueue
  metrics: Metrics
  /** The namespace, the content loader and export on request, for `s3link hsm state|restore|archive` (routes/hsm.ts). */
  filesystem: FileSystem
  loader: Loader
  treeExport: TreeExport
  log: Logger
}

export type App = FastifyInstance

export async function buildApp (services: ApiServices, opts: { credentials?: AdminCredentials, listener: 'unix' | 'tcp' }): Promise<App> {
  const app = Fastify({ logger: false, bodyLimit: BODY_LIMIT, return503OnClosing: true }).withTypeProvider<ZodTypeProvider>()
  app.setValidatorCompiler(validatorCompiler)
  app.setSerializerCompiler(serializerCompiler)
  const log = services.log.child({ subsystem: 'api', listener: opts.listener })

  if (opts.credentials !== undefined) {
    const hooks = authHooks(opts.credentials)
    app.addHook('onRequest', hooks.onRequest)
    app.addHook('preValidation', hooks.preValidation)
  }
  app.addHook('preParsing', async (request, _reply, payload) => {
    const raw = await readBounded(request, payload)
    request.rawBody = raw
    const stream = Readable.from([raw]) as Readable & { receivedEncodedLength?: number }
    stream.receivedEncodedLength = raw.length
    return stream
  })
  app.addHook('onResponse', async (request, reply) => {
    // Path only: a query string is the caller's business, and the body may hold secrets.
    log.debug('request', { method: request.method, path: request.url.split('?')[0], status: reply.statusCode, ms: Math.round(reply.elapsedTime) })
  })

  await app.register(formbody)
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const { statusCode, body, headers } = errorReply(err, request)
    if (statusCode >= 500) log.error('request failed', { method: request.method, path: request.url.split('?')[0], error: err.message, stack: err.stack })
    else if (statusCode === 401 || statusCode === 403) log.warn('request refused', { method: request.method, path: request.url.split('?')[0], status: statusCode, reason: body.message ?? body.Message })
    void reply.code(statusCode).headers(headers).send(body)
  })
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ error: 'NotFound', message: `no route ${request.method} ${request.url.split('?')[0]}` })
  })

  await app.register(dashboardRoutes)
  await app.register(statusRoutes, { status: services.status, queues: services.queues })
  await app.register(bucketRoutes, { table: services.table, clients: services.clients, log })
  await app.register(fsxProtocol, { operations: services.fsx, log })
  await app.register(eventRoutes, { table: services.table, queue: services.importQueue, metrics: services.metrics, log })
  await app.register(metricsRoutes, { metrics: services.metrics })
  await app.register(hsmRoutes, { filesystem: services.filesystem, loader: services.loader, treeExport: services.treeExport, log })
  return app
}

/** Reads the whole body, refusing (413) anything larger than BODY_LIMIT without buffering it. */
async function readBounded (request: FastifyRequest, payload: NodeJS.ReadableStream): Promise<Buffer> {
  const declared = Number(request.headers['content-length'] ?? 0)
  if (declared > BODY_LIMIT) throw tooLarge()
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of payload) {
    size += (chunk as Buffer).length
    if (size > BODY_LIMIT) throw tooLarge()
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

function tooLarge (): ApiError {
  return new ApiError(413, { error: 'PayloadTooLarge', message: `the request body is larger than ${BODY_LIMIT} bytes` })
}

function errorReply (err: FastifyError, request: FastifyRequest): { statusCode: number, body: Record<string, unknown>, headers: Record<string, string> } {
  if (err instanceof ApiError) return { statusCode: err.statusCode, body: err.body, headers: err.headers }
  if (hasZodFastifySchemaValidationErrors(err)) {
    const issue = err.validation[0].params.issue
    const field = issue.code === 'unrecognized_keys' ? issue.keys[0] : String(issue.path[0] ?? err.validationContext ?? 'body')
    const message = issue.code === 'unrecognized_keys' ? 'is not a known field' : issue.message
    return { statusCode: 400, body: { error: 'BadRequest', field, message: `${field}: ${message}` }, headers: {} }
  }
  if (err instanceof BucketFieldError) return { statusCode: 400, body: { error: 'BadRequest', field: err.field, message: err.message }, headers: {} }
  if (err instanceof BucketNotFoundError) return { statusCode: 404, body: { error: 'NotFound', field: 'bucketname', message: err.message }, headers: {} }
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return { statusCode: 413, body: tooLarge().body, headers: {} }
  if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return { statusCode: 415, body: { error: 'UnsupportedMediaType', message: `content type ${String(request.headers['content-type'])} is not accepted here` }, headers: {} }
  }
  const statusCode = err.statusCode ?? 500
  // Node's JSON.parse messages quote the input, which may hold a secret: say less.
  if (err instanceof SyntaxError && statusCode === 400) return { statusCode, body: { error: 'BadRequest', field: 'body', message: 'the body is not valid JSON' }, headers: {} }
  if (statusCode < 500) return { statusCode, body: { error: 'BadRequest', field: 'body', message: err.message }, headers: {} }
  return { statusCode: 500, body: { error: 'InternalError', message: 'internal error (details are in the daemon log)' }, headers: {} }
}
