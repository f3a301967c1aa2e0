/**
 * The FSx wire protocol (spec/fsx-dra.md §2): awsJson 1.1, `POST /` with
 * `X-Amz-Target: AWSSimbaAPIService_v20180301.<Operation>`, so `aws fsx … --endpoint-url`, the AWS
 * SDKs and Terraform work unchanged. Authentication is the listener's (auth.ts: SigV4 with the
 * admin credentials on TCP; the Unix socket is trusted).
 *
 * Every error leaves as `{ __type, Message, …extra }` with the same name in `x-amzn-ErrorType`:
 * FSx's own errors (400, InternalServerError 500), `SerializationException` for a body that is
 * not a JSON object, `UnknownOperationException` for a missing or unknown target, and the
 * authentication errors in AWS's names.
 */
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { ZodError } from 'zod'
import type { Logger } from '../../daemon/logger'
import { FsxError } from '../../dra/errors'
import { ApiError, awsError } from '../errors'
import type { Operation } from './operations'

export const TARGET_PREFIX = 'AWSSimbaAPIService_v20180301.'
const JSON_TYPES = ['application/x-amz-json-1.1', 'application/x-amz-json-1.0']
/** Bodies we read as awsJson: the SDKs' types, and plain JSON from hand-made clients. */
const ACCEPTED_TYPES = [...JSON_TYPES, 'application/json']

export const fsxProtocol: FastifyPluginAsync<{ operations: Record<string, Operation>, log: Logger }> = async (app, { operations, log }) => {
  app.addContentTypeParser(JSON_TYPES, { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, body === '' ? {} : JSON.parse(body as string))
    } catch {
      done(awsError(400, 'SerializationException', 'the body is not valid JSON'), undefined)
    }
  })

  app.setErrorHandler((err: FastifyError, request, reply) => {
    const e = toAwsError(err, request)
    if (e.statusCode >= 500) log.error('FSx request failed', { target: request.headers['x-amz-target'], error: err.message, stack: err.stack })
    void reply.code(e.statusCode).headers(e.headers).send(e.body)
  })

  app.post('/', async (request: FastifyRequest, reply: FastifyReply) => {
    const target = String(request.headers['x-amz-target'] ?? '')
    const name = target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : undefined
    const operation = name !== undefined && Object.hasOwn(operations, name) ? operations[name] : undefined
    if (operation === undefined) {
      throw awsError(400, 'UnknownOperationException', target === '' ? 'X-Amz-Target is missing: name the operation as AWSSimbaAPIService_v20180301.<Operation>' : `${target} is not an operation s3link serves`)
    }
    // fastify also parses text/plain and forms (for other routes): such a body is not an FSx input.
    const type = String(request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase()
    if (type !== '' && !ACCEPTED_TYPES.includes(type)) {
      throw awsError(400, 'SerializationException', `content type ${type} is not accepted: send application/x-amz-json-1.1`)
    }
    const body = request.body
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw awsError(400, 'SerializationException', 'the body must be a JSON object')
    const result = await operation.run(operation.input.parse(body))
    log.debug('FSx request', { operation: name })
    void reply.header('content-type', 'application/x-amz-json-1.1')
    return JSON.stringify(result)
  })
}

function toAwsError (err: FastifyError, request: FastifyRequest): ApiError {
  if (err instanceof FsxError) return awsError(err.statusCode, err.type, err.message, err.extra)
  if (err instanceof ZodError) return awsError(400, 'BadRequest', validationMessage(err))
  if (err instanceof ApiError) {
    if (typeof err.body.__type === 'string') return err
    if (err.statusCode === 401) {
      const type = request.headers.authorization === undefined ? 'MissingAuthenticationTokenException' : 'UnrecognizedClientException'
      return awsError(403, type, err.message)
    }
    return awsError(err.statusCode, err.statusCode === 413 ? 'RequestEntityTooLargeException' : 'BadRequest', err.message)
  }
  // Node's JSON.parse messages quote the input, which may hold a secret: say less.
  if (err instanceof SyntaxError) return awsError(400, 'SerializationException', 'the body is not valid JSON')
  if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return awsError(400, 'SerializationException', `content type ${String(request.headers['content-type'])} is not accepted: send application/x-amz-json-1.1`)
  }
  if (err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') return awsError(400, 'SerializationException', 'the body is empty: send a JSON object')
  if ((err.statusCode ?? 500) < 500) return awsError(400, 'BadRequest', err.message)
  return awsError(500, 'InternalServerError', 'internal error (details are in the daemon log)')
}

/** The first problem, naming the field by its path: "FileSystemPath: String must contain at most 4096 character(s)". */
function validationMessage (err: ZodError): string {
  const issue = err.issues[0]
  const where = issue.path.join('.')
  if (issue.code === 'unrecognized_keys') return `${issue.keys.map((k) => (where === '' ? k : `${where}.${k}`)).join(', ')}: not a parameter of this operation`
  if (issue.code === 'invalid_type' && issue.received === 'undefined') return `${where}: is required`
  return `${where === '' ? 'request' : where}: ${issue.message}`
}
