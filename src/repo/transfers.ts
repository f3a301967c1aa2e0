/**
 * Export's S3 writes, made by the transfer worker (transfer-worker.ts) rather than on the main
 * thread: the functions of uploads.ts, with the bucket's main-thread client and table entry as
 * target. The main thread keeps the export queue, the namespace commits and FUSE; the SDK's work
 * and the reads of content files go to the worker, which a writer in the mount no longer waits
 * behind (with them on the main thread, a `dd` ran at 0.35–0.5× while small-file exports drained).
 *
 * Per request the worker is sent: the client's settings (from the bucket entry, as S3Clients
 * builds its client: s3-clients.ts), the credentials the main client resolves (its memoized
 * provider: static keys, assumed role, default chain; refreshed before expiry as before) and the
 * key of the client's generation: a table change gives the bucket a new main client, hence a new
 * key, and the worker's client of the old one is dropped.
 *
 * The worker is started with the services (and on first use) and again at the first request after
 * it died (not in a loop if it cannot start); requests it had not answered fail
 * with a retryable error (TransferWorkerExited: no HTTP status), which the export queue retries
 * with backoff. close() ends it: requests still running fail the same way and stay queued.
 * An AbortSignal cancels its request in the worker.
 */
import path from 'node:path'
import { Worker } from 'node:worker_threads'
import type { S3Client } from '@aws-sdk/client-s3'
import type { Logger } from '../daemon/logger'
import { type BucketEntry, resolveSettings } from './bucket-entry'
import { CONNECTION_TIMEOUT_MS } from './s3-clients'
import type { ClientSettings, Credentials, Operation, Reply, Request, SerialisedError } from './transfer-worker'
import type { Encryption, Written } from './uploads'

export interface Target { client: S3Client, bucket: string, entry?: BucketEntry }

interface Pending { resolve: (etag: string) => void, reject: (err: Error) => void, worker: Worker }

/** An error as the worker described it, with the fields the exporter classifies by. */
function revive (e: SerialisedError): Error {
  return Object.assign(new Error(e.message), e)
}

export function encryptionOf (entry?: BucketEntry): Encryption {
  if (entry === undefined) return {}
  const { sse } = resolveSettings(entry)
  if (sse === 'AES256') return { ServerSideEncryption: 'AES256' }
  if (sse === 'aws:kms') return { ServerSideEncryption: 'aws:kms', ...(entry.kmsKeyId !== '' ? { SSEKMSKeyId: entry.kmsKeyId } : {}) }
  return {}
}

export class Transfers {
  private worker?: Worker
  private closed = false
  private nextId = 1
  private readonly pending = new Map<number, Pending>()
  /** Worker-side key of each main-thread client (bucket and generation), and each bucket's latest. */
  private readonly keys = new WeakMap<S3Client, string>()
  private readonly latest = new Map<string, string>()
  private generation = 0

  constructor (
    private readonly log: Logger,
    /** A request whose connection is silent this long fails (S3Clients' idleTimeoutMs). */
    private readonly opts: { idleTimeoutMs?: number } = {},
    private readonly script = path.join(__dirname, 'transfer-worker.js')
  ) {}

  /** Uploads `size` bytes of a local file; multipart (parallel parts) above one part. */
  async putFile (t: Target, key: string, file: string, size: number, metadata: Record<string, string>, signal?: AbortSignal): Promise<Written> {
    return { etag: await this.run(t, { op: 'putFile', key, file, size, metadata }, signal) }
  }

  async putText (t: Target, key: string, body: string, metadata: Record<string, string>, signal?: AbortSignal): Promise<Written> {
    return { etag: await this.run(t, { op: 'putText', key, body, metadata }, signal) }
  }

  /** Server-side copy (same bucket) with the given metadata instead of the source's. */
  async copyWithMetadata (t: Target, from: string, to: string, metadata: Record<string, string>, signal?: AbortSignal): Promise<Written> {
    return { etag: await this.run(t, { op: 'copy', from, to, metadata }, signal) }
  }

  /** Deletes keys one request each; a key that does not exist is fine, as in S3. */
  async deleteKeys (t: Target, keys: string[], signal?: AbortSignal): Promise<void> {
    await this.run(t, { op: 'delete', keys }, signal)
  }

  /** Starts the worker now rather than at the first transfer (it loads the SDK: some 0.2 s). */
  start (): void {
    this.started()
  }

  /** Ends the worker; what it was doing fails (retryably) and is done again at the next start. Idempotent. */
  async close (): Promise<void> {
    this.closed = true
    const worker = this.worker
    this.worker = undefined
    if (worker !== undefined) await worker.terminate()
  }

  private async run (t: Target, operation: Operation, signal?: AbortSignal): Promise<string> {
    signal?.throwIfAborted()
    const settings = { ...await settingsOf(t), idleTimeoutMs: this.opts.idleTimeoutMs }
    // The main client's provider: memoized, renewed before expiry (credentials.ts).
    const c = await t.client.config.credentials()
    const credentials: Credentials = { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken, expiration: c.expiration }
    signal?.throwIfAborted()
    const worker = this.started()
    const id = this.nextId++
    const request: Request = { type: 'run', id, client: this.keyOf(t, worker), settings, credentials, bucket: t.bucket, encryption: encryptionOf(t.entry), operation }
    const onAbort = (): void => { worker.postMessage({ type: 'cancel', id } satisfies Request) }
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      return await new Promise<string>((resolve, reject) => {
        this.pending.set(id, { resolve, reject, worker })
        worker.ref()
        worker.postMessage(request)
      })
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
  }

  private keyOf (t: Target, worker: Worker): string {
    let key = this.keys.get(t.client)
    if (key === undefined) {
      key = `${t.bucket}#${++this.generation}`
      this.keys.set(t.client, key)
    }
    const before = this.latest.get(t.bucket)
    if (before !== key) {
      this.latest.set(t.bucket, key)
      if (before !== undefined) worker.postMessage({ type: 'drop', client: before } satisfies Request)
    }
    return key
  }

  private started (): Worker {
    if (this.closed) throw Object.assign(new Error('transfers are closed'), { name: 'TransferWorkerExited' })
    if (this.worker !== undefined) return this.worker
    const worker = this.worker = new Worker(this.script)
    worker.unref() // ref'd only while requests wait for it
    worker.on('message', (reply: Reply) => { this.answer(reply) })
    worker.on('error', (err) => { this.log.error('the transfer worker failed', { error: err.message }) })
    worker.on('exit', (code) => { this.exited(worker, code) })
    return worker
  }

  private answer (reply: Reply): void {
    const p = this.pending.get(reply.id)
    if (p === undefined) return
    this.settle(reply.id)
    if ('error' in reply) p.reject(revive(reply.error))
    else p.resolve(reply.etag)
  }

  private settle (id: number): void {
    const p = this.pending.get(id)
    this.pending.delete(id)
    if (p !== undefined && ![...this.pending.values()].some((o) => o.worker === p.worker)) p.worker.unref()
  }

  /** Its requests fail retryably; the next request starts a new worker (unless closed). */
  private exited (worker: Worker, code: number): void {
    if (this.worker === worker) this.worker = undefined
    // Its clients went with it: the next worker builds them again.
    this.latest.clear()
    let failed = 0
    for (const [id, p] of [...this.pending]) {
      if (p.worker !== worker) continue
      this.settle(id)
      p.reject(Object.assign(new Error(`the transfer worker exited (code ${code}) before the request finished`), { name: 'TransferWorkerExited' }))
      failed++
    }
    if (!this.closed) this.log.error('the transfer worker exited; it is started again at the next transfer', { code, failed })
  }
}

async function settingsOf (t: Target): Promise<ClientSettings> {
  const e = t.entry
  // Not in the table: the default configuration, whose region the main client has resolved.
  if (e === undefined) return { region: await t.client.config.region(), connectionTimeoutMs: CONNECTION_TIMEOUT_MS }
  const s = resolveSettings(e)
  return {
    region: s.region,
    ...(e.endpoint !== '' ? { endpoint: e.endpoint } : {}),
    forcePathStyle: s.pathStyle,
    checksums: s.checksums,
    connectionTimeoutMs: CONNECTION_TIMEOUT_MS
  }
}
