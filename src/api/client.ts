/**
 * The CLI's side of the control API: HTTP over the file system's Unix socket (STATE_DIR/api.sock),
 * which needs no credentials (only root can open it). Bodies are forms (the bucket API), FSx
 * awsJson requests (`callFsx`) or plain JSON. Replies are parsed JSON, or NDJSON handed over line by
 * line as it arrives (`callApiLines`, for progress); an API error becomes an ApiCallError carrying
 * the reply's message and field, for the CLI to print.
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

type Body = { form: Record<string, string> } | { fsx: string, input: object } | { json: object }

function encode (body: Body | undefined): { payload?: string, headers: Record<string, string | number> } {
  if (body === undefined) return { headers: {} }
  if ('form' in body) {
    const payload = new URLSearchParams(body.form).toString()
    return { payload, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(payload) } }
  }
  if ('json' in body) {
    const payload = JSON.stringify(body.json)
    return { payload, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }
  }
  const payload = JSON.stringify(body.input)
  return { payload, headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `AWSSimbaAPIService_v20180301.${body.fsx}`, 'content-length': Buffer.byteLength(payload) } }
}

export async function callApi (socket: string, method: string, path: string, body?: Body): Promise<ApiReply> {
  const { payload, headers } = encode(body)
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
    req.on('error', (err) => reject(connectError(err, socket)))
    req.end(payload)
  })
}

function connectError (err: NodeJS.ErrnoException, socket: string): Error {
  if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') return new UsageError(`the daemon is not running (no API at ${socket}): start it with s3link mount`)
  return err
}

/**
 * A request whose 2xx reply is NDJSON: each line is parsed and handed to onLine as soon as it
 * arrives; resolves at the end of the reply. A non-2xx reply is read whole: ApiCallError.
 */
export async function callApiLines (socket: string, method: string, path: string, body: Body | undefined, onLine: (line: Record<string, unknown>) => void): Promise<void> {
  const { payload, headers } = encode(body)
  await new Promise<void>((resolve, reject) => {
    const req = http.request({ socketPath: socket, method, path, headers }, (res) => {
      const status = res.statusCode ?? 0
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        text += chunk
        if (status < 200 || status > 299) return
        const lines = text.split('\n')
        text = lines.pop() ?? ''
        try {
          for (const line of lines) if (line.trim() !== '') onLine(JSON.parse(line) as Record<string, unknown>)
        } catch (err) {
          res.destroy()
          reject(err)
        }
      })
      res.on('end', () => {
        if (status >= 200 && status <= 299) {
          if (text.trim() !== '') reject(new Error('the API\'s reply ended in the middle of a line'))
          else resolve()
          return
        }
        let parsed: Record<string, unknown>
        try { parsed = JSON.parse(text) as Record<string, unknown> } catch { parsed = { message: text } }
        reject(new ApiCallError(status, parsed))
      })
      res.on('error', (err) => reject(new UsageError(`the daemon closed the connection before its reply ended (${err.message}): see its log`)))
    })
    req.on('error', (err) => reject(connectError(err, socket)))
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
