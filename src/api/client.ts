/**
 * The CLI's side of the control API: HTTP over the file system's Unix socket (STATE_DIR/api.sock),
 * which needs no credentials (only root can open it). Bodies are forms (the bucket API) or FSx
 * awsJson requests (`callFsx`). Replies are parsed JSON; an API error becomes
 * an ApiCallError carrying the reply's message and field, for the CLI to print.
 */
import http from 'node:http'
import { UsageError } from '../util/errors'

export interface ApiReply { status: number, body: Record<string, unknown> }

export class ApiCallError extends UsageError {
  constructor (readonly status: number, readonly body: Record<string, unknown>) {
    // FSx errors say { __type, Message }, the other routes { error, message }.
    super(typeof body.__type === 'string' ? `${body.__type}: ${String(body.Message ?? body.message)}` : String(body.message ?? `the API answered ${status}`))
  }
}

type Body = { form: Record<string, string> } | { fsx: string, input: object }

export async function callApi (socket: string, method: string, path: string, body?: Body): Promise<ApiReply> {
  let payload: string | undefined
  let headers: Record<string, string | number> = {}
  if (body !== undefined && 'form' in body) {
    payload = new URLSearchParams(body.form).toString()
    headers = { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(payload) }
  } else if (body !== undefined) {
    payload = JSON.stringify(body.input)
    headers = { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `AWSSimbaAPIService_v20180301.${body.fsx}`, 'content-length': Buffer.byteLength(payload) }
  }
  return await new Promise<ApiReply>((resolve, reject) => {
    const req = http.request({ socketPath: socket, method, path, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let parsed: Record<string, unknown>
        try { parsed = text === '' ? {} : JSON.parse(text) as Record<string, unknown> } catch { parsed = { message: text } }
        resolve({ status: res.statusCode ?? 0, body: parsed })
      })
      res.on('error', reject)
    })
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') reject(new UsageError(`the daemon is not running (no API at ${socket}): start it with s3link mount`))
      else reject(err)
    })
    req.end(payload)
  })
}

/** callApi, throwing ApiCallError for any non-2xx reply. */
export async function callApiOk (socket: string, method: string, path: string, body?: Body): Promise<Record<string, unknown>> {
  const reply = await callApi(socket, method, path, body)
  if (reply.status < 200 || reply.status > 299) throw new ApiCallError(reply.status, reply.body)
  return reply.body
}

/** One FSx operation (awsJson, `POST /`) over the socket: its response, or an ApiCallError naming the FSx error. */
export async function callFsx (socket: string, operation: string, input: object): Promise<Record<string, unknown>> {
  return await callApiOk(socket, 'POST', '/', { fsx: operation, input })
}
