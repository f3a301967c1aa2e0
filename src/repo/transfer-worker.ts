/**
 * The transfer worker: a worker thread that makes export's S3 writes (uploads.ts), so that the
 * SDK's work (signing, checksums, XML, sockets) and the reads of content files are not done on
 * the daemon's main thread, which answers FUSE requests: there they slowed a writer in the mount
 * to half its speed while a backlog of exports drained. transfers.ts is its other side.
 *
 * It holds no state that matters: one S3 client per bucket generation (built from the plain
 * settings the main thread sends, dropped when the main thread's client is), and the requests
 * running. Credentials are resolved by the main thread (static keys, assumed roles, the default
 * chain: credentials.ts) and sent with every request; the client reads them from its holder at
 * every signing, so a refreshed identity is used from the next request on. They are never logged
 * nor put into an answer.
 *
 * Only the SDK is loaded here (uploads.ts imports nothing else), to keep the start cheap.
 */
import fs from 'node:fs'
import os from 'node:os'
import { parentPort } from 'node:worker_threads'
import { S3Client } from '@aws-sdk/client-s3'
import type { AwsCredentialIdentity } from '@smithy/types'
import { type Encryption, copyWithMetadata, deleteKeys, putFile, putText } from './uploads'

/** How a bucket's client is built: what S3Clients derives from its table entry. */
export interface ClientSettings {
  region?: string
  endpoint?: string
  forcePathStyle?: boolean
  checksums?: 'WHEN_SUPPORTED' | 'WHEN_REQUIRED'
  connectionTimeoutMs: number
  idleTimeoutMs?: number
}

export interface Credentials { accessKeyId: string, secretAccessKey: string, sessionToken?: string, expiration?: Date }

export type Operation =
  | { op: 'putFile', key: string, file: string, size: number, metadata: Record<string, string> }
  | { op: 'putText', key: string, body: string, metadata: Record<string, string> }
  | { op: 'copy', from: string, to: string, metadata: Record<string, string> }
  | { op: 'delete', keys: string[] }

export type Request =
  | {
    type: 'run'
    id: number
    /** Bucket and generation of the main thread's client: a new one means new settings. */
    client: string
    settings: ClientSettings
    credentials: Credentials
    bucket: string
    encryption: Encryption
    operation: Operation
  }
  | { type: 'cancel', id: number }
  /** The main thread's client was dropped (table change, close): so is this one, once idle. */
  | { type: 'drop', client: string }

/** An S3 error as the exporter classifies it (exporter.ts `failed`, objects.ts). */
export interface SerialisedError {
  name: string
  message: string
  code?: string
  Code?: string
  $fault?: string
  $metadata?: { httpStatusCode?: number }
}

export type Reply = { id: number, etag: string } | { id: number, error: SerialisedError }

interface Held { client: S3Client, credentials: { current: Credentials }, running: number, dropped: boolean }

/**
 * This thread's nice value. On 2 CPUs, exports at full speed (this thread, and on the bench the S3
 * server) still took CPU from a writer in the mount and the main thread answering it: exports are
 * background work and yield the CPU to them. Raising one's nice value needs no privilege.
 */
const NICE = 10

/** Linux schedules threads: setpriority(2) of this thread's id lowers only this thread. */
function lowerPriority (): void {
  try {
    const tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop())
    if (Number.isInteger(tid) && os.getPriority(tid) < NICE) os.setPriority(tid, NICE)
  } catch {
    // Not Linux, or no /proc: run at the daemon's priority.
  }
}

const clients = new Map<string, Held>()
const running = new Map<number, AbortController>()

function clientFor (r: Extract<Request, { type: 'run' }>): Held {
  let held = clients.get(r.client)
  if (held === undefined) {
    const s = r.settings
    const credentials = { current: r.credentials }
    // Marked memoized: the SDK then asks at every signing, and gets what the last request brought.
    const provider = Object.assign(async (): Promise<AwsCredentialIdentity> => credentials.current, { memoized: true })
    const client = new S3Client({
      ...(s.region !== undefined ? { region: s.region } : {}),
      ...(s.endpoint !== undefined ? { endpoint: s.endpoint } : {}),
      ...(s.forcePathStyle !== undefined ? { forcePathStyle: s.forcePathStyle } : {}),
      ...(s.checksums !== undefined ? { requestChecksumCalculation: s.checksums, responseChecksumValidation: s.checksums } : {}),
      credentials: provider,
      requestHandler: { connectionTimeout: s.connectionTimeoutMs, socketTimeout: s.idleTimeoutMs }
    })
    held = { client, credentials, running: 0, dropped: false }
    clients.set(r.client, held)
  }
  held.credentials.current = r.credentials
  return held
}

function release (key: string, held: Held): void {
  held.running--
  if (held.dropped && held.running === 0) {
    held.client.destroy()
    if (clients.get(key) === held) clients.delete(key)
  }
}

async function perform (r: Extract<Request, { type: 'run' }>, signal: AbortSignal): Promise<string> {
  const held = clientFor(r)
  held.running++
  try {
    const t = { client: held.client, bucket: r.bucket, encryption: r.encryption }
    const o = r.operation
    if (o.op === 'putFile') return (await putFile(t, o.key, o.file, o.size, o.metadata, signal)).etag
    if (o.op === 'putText') return (await putText(t, o.key, o.body, o.metadata, signal)).etag
    if (o.op === 'copy') return (await copyWithMetadata(t, o.from, o.to, o.metadata, signal)).etag
    await deleteKeys(t, o.keys, signal)
    return ''
  } finally {
    release(r.client, held)
  }
}

/** What the exporter reads of an error (name, status, codes, message), and nothing else. */
export function serialiseError (err: unknown): SerialisedError {
  const e = (typeof err === 'object' && err !== null ? err : { message: String(err) }) as Partial<SerialisedError>
  const out: SerialisedError = { name: typeof e.name === 'string' ? e.name : 'Error', message: typeof e.message === 'string' ? e.message : String(err) }
  if (typeof e.code === 'string') out.code = e.code
  if (typeof e.Code === 'string') out.Code = e.Code
  if (typeof e.$fault === 'string') out.$fault = e.$fault
  const status = e.$metadata?.httpStatusCode
  if (e.$metadata !== undefined) out.$metadata = typeof status === 'number' ? { httpStatusCode: status } : {}
  return out
}

function onMessage (r: Request): void {
  if (r.type === 'cancel') { running.get(r.id)?.abort(); return }
  if (r.type === 'drop') {
    const held = clients.get(r.client)
    if (held === undefined) return
    held.dropped = true
    held.running++ // release() below destroys it now if idle
    release(r.client, held)
    return
  }
  const abort = new AbortController()
  running.set(r.id, abort)
  perform(r, abort.signal).then(
    (etag) => { parentPort?.postMessage({ id: r.id, etag } satisfies Reply) },
    (err: unknown) => { parentPort?.postMessage({ id: r.id, error: serialiseError(err) } satisfies Reply) }
  ).finally(() => running.delete(r.id))
}

if (parentPort !== null) {
  lowerPriority()
  parentPort.on('message', onMessage)
}
