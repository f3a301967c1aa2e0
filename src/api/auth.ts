/**
 * Who may call the API.
 *
 *  - The Unix socket STATE_DIR/api.sock is trusted without credentials: it is mode 0600 in a 0700
 *    state directory, so only root (the daemon's user) can connect. The CLI uses it.
 *  - TCP needs the file system's admin credentials (STATE_DIR/credentials.json, written by init):
 *      `Authorization: Bearer <token>`, or the bare token (InfinStor clients send it without a
 *      scheme, spec/fsx-dra.md §25.2); or AWS Signature V4 with the admin accessKeyId and
 *      secretAccessKey, so AWS SDKs and the AWS CLI can call the API.
 *    Public on TCP: `GET /` and `GET /dashboard/*` (the page itself logs in with the token), and
 *    `POST /events/s3` (authenticated by the bucket's shared secret instead).
 *
 * Checks happen in two hooks: `onRequest` (before the body is read) settles bearer tokens and the
 * cheap SigV4 checks (shape, access key id, date skew); `preValidation` (once the raw body is in)
 * recomputes the SigV4 signature. Both run before any route handler, so a refused request changes
 * nothing. All comparisons of secrets are constant-time.
 */
import fs from 'node:fs'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { awsError, unauthorized } from './errors'
import { EVENTS_PATH } from './routes/events'
import { type SigV4Header, checkSigV4Envelope, constantTimeEqual, isSigV4, parseSigV4, verifySigV4 } from './sigv4'

export interface AdminCredentials { accessKeyId: string, secretAccessKey: string, token: string }

export async function loadAdminCredentials (file: string): Promise<AdminCredentials> {
  const parsed = JSON.parse(await fs.promises.readFile(file, 'utf8')) as Partial<AdminCredentials>
  if (typeof parsed.accessKeyId !== 'string' || typeof parsed.secretAccessKey !== 'string' || typeof parsed.token !== 'string') {
    throw new Error(`${file} lacks accessKeyId, secretAccessKey or token`)
  }
  return { accessKeyId: parsed.accessKeyId, secretAccessKey: parsed.secretAccessKey, token: parsed.token }
}

/**
 * Routes without admin credentials: the dashboard's page and static files (GET), and the S3 event
 * webhook, which checks the bucket's shared secret itself (routes/events.ts).
 */
export function isPublic (method: string, url: string): boolean {
  const path = url.split('?')[0]
  if (path === EVENTS_PATH) return method === 'POST' || method === 'HEAD'
  if (method !== 'GET' && method !== 'HEAD') return false
  return path === '/' || path.startsWith('/dashboard/')
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The body exactly as received (SigV4 signs it); set by the preParsing hook. */
    rawBody?: Buffer
    /** A SigV4 request whose signature still has to be checked once the body is in. */
    pendingSigV4?: { header: SigV4Header, date: Date }
  }
}

export function authHooks (creds: AdminCredentials) {
  return {
    onRequest: async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
      if (isPublic(request.method, request.url)) return
      const authorization = request.headers.authorization
      if (authorization === undefined || authorization.trim() === '') {
        throw unauthorized('authentication required: Authorization: Bearer <token> or AWS Signature V4 with the admin credentials')
      }
      if (isSigV4(authorization)) {
        const header = parseSigV4(authorization)
        const date = checkSigV4Envelope(header, headerValue(request.headers['x-amz-date']))
        if (!constantTimeEqual(header.accessKeyId, creds.accessKeyId)) {
          throw awsError(403, 'UnrecognizedClientException', 'the access key id is not this file system\'s admin key')
        }
        request.pendingSigV4 = { header, date }
        return
      }
      const token = authorization.replace(/^Bearer\s+/i, '').trim()
      if (!constantTimeEqual(token, creds.token)) throw unauthorized('the token is not this file system\'s admin token')
    },

    preValidation: async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
      const pending = request.pendingSigV4
      if (pending === undefined) return
      await verifySigV4({
        method: request.method,
        url: request.url,
        headers: request.headers,
        body: request.rawBody ?? Buffer.alloc(0)
      }, pending.header, pending.date, creds.secretAccessKey)
      request.pendingSigV4 = undefined
    }
  }
}

function headerValue (v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v
}
