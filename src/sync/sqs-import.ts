/**
 * Automatic import from SQS (change source 3, DESIGN.md "Import"; issue 5): S3 sends its event
 * notifications to a queue, directly or through SNS, and we long-poll it.
 *
 * The FSx API has no field for a queue, and its wire shapes stay FSx's (so the AWS CLI and
 * Terraform work), so the queue is the DRA tag `s3link:sqs-queue-url`. Every AVAILABLE DRA with an
 * import policy and that tag gets its queue polled; DRAs that name the same queue share one poller.
 * A poll's messages are parsed (events.ts), their changes for the DRAs' buckets queued durably
 * (import-queue.ts) and only then deleted from SQS: a crash in between leaves them in the queue,
 * and SQS delivers them again after the visibility timeout (duplicates are harmless: the applier
 * looks at what S3 holds now). Failures (queue missing, access denied, network) are logged and
 * retried with capped exponential backoff; they never stop the daemon.
 *
 * Pollers follow the DRAs: on every 'changed' event (lifecycle, tags) and, as a guard, every
 * `rescanMs`. A poller whose DRA is gone, no longer AVAILABLE, or lost its tag or policy stops at
 * once (its long poll is aborted); the messages left wait in SQS.
 */
import type { Logger } from '../daemon/logger'
import { importEvents } from '../dra/association'
import type { Associations } from '../dra/associations'
import { parseRepositoryPath } from '../dra/paths'
import type { BucketTable } from '../repo/bucket-table'
import type { CredentialOptions } from '../repo/credentials'
import { type QueueMessage, SqsQueue, describeSqsError, isAbortError, queueUrlProblem } from '../repo/sqs'
import type { Metrics } from '../util/metrics'
import { EventFormatError, type ObjectChange, parseEventBody } from './events'
import type { ImportQueue } from './import-queue'

export const QUEUE_URL_TAG = 's3link:sqs-queue-url'

const RESCAN_MS = 30_000
const BACKOFF_MIN_MS = 1000
const BACKOFF_MAX_MS = 60_000

/** Capped exponential backoff after `failures` consecutive failures (1 s, 2 s, 4 s … 60 s). */
export function backoffMs (failures: number): number {
  return Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.max(0, failures - 1))
}

export interface SqsImportOptions {
  associations: Associations
  table: BucketTable
  queue: ImportQueue
  metrics: Metrics
  log: Logger
  credentials: CredentialOptions
  rescanMs?: number
}

export class SqsImporter {
  /** By queue URL. */
  private readonly pollers = new Map<string, Poller>()
  /** Pollers told to stop whose last round (maybe an enqueue) is not over yet. */
  private readonly stopping = new Set<Promise<void>>()
  /** Bad queue URLs already logged, so a rescan does not repeat the warning. */
  private readonly reported = new Set<string>()
  private timer?: NodeJS.Timeout
  private stopped = false
  private readonly onChanged = (): void => { this.sync() }

  constructor (private readonly o: SqsImportOptions) {}

  start (): void {
    // 'queued': a delete or update request makes the DRA leave AVAILABLE at once.
    this.o.associations.on('changed', this.onChanged)
    this.o.associations.on('queued', this.onChanged)
    this.timer = setInterval(() => this.sync(), this.o.rescanMs ?? RESCAN_MS)
    this.sync()
  }

  /** Stops every poller (aborting its long poll) and waits for them. Idempotent. */
  async stop (): Promise<void> {
    this.stopped = true
    this.o.associations.off('changed', this.onChanged)
    this.o.associations.off('queued', this.onChanged)
    clearInterval(this.timer)
    const all = [...this.pollers.values()]
    this.pollers.clear()
    await Promise.all([...all.map(async (p) => await p.stop()), ...this.stopping])
  }

  /** Starts and stops pollers to match the DRAs: the queues wanted now, with their buckets. */
  private sync (): void {
    if (this.stopped) return
    const wanted = new Map<string, { buckets: Set<string>, ids: string[] }>()
    for (const dra of this.o.associations.list()) {
      const url = dra.Tags?.find((t) => t.Key === QUEUE_URL_TAG)?.Value.trim()
      if (url === undefined || url === '' || dra.Lifecycle !== 'AVAILABLE' || importEvents(dra).length === 0) continue
      const problem = queueUrlProblem(url)
      if (problem !== undefined) {
        if (!this.reported.has(url)) this.o.log.warn(`the ${QUEUE_URL_TAG} tag ${problem}: not polling it`, { associationId: dra.AssociationId, queueUrl: url })
        this.reported.add(url)
        continue
      }
      const w = wanted.get(url) ?? { buckets: new Set<string>(), ids: [] }
      w.buckets.add(parseRepositoryPath(dra.DataRepositoryPath).bucket)
      w.ids.push(dra.AssociationId)
      wanted.set(url, w)
    }
    for (const [url, poller] of this.pollers) {
      if (wanted.has(url)) continue
      this.pollers.delete(url)
      this.o.log.info('stopped polling an SQS queue', { queueUrl: url })
      const stopped = poller.stop().finally(() => this.stopping.delete(stopped))
      this.stopping.add(stopped)
    }
    for (const [url, w] of wanted) {
      const existing = this.pollers.get(url)
      if (existing !== undefined) {
        existing.buckets = w.buckets
        continue
      }
      const poller = new Poller(url, w.buckets, this.o)
      this.pollers.set(url, poller)
      this.o.log.info('polling an SQS queue for S3 events', { queueUrl: url, associationIds: w.ids, buckets: [...w.buckets] })
      poller.start()
    }
  }
}

/** One queue's receive → queue → delete loop. */
class Poller {
  private readonly abort = new AbortController()
  private running?: Promise<void>
  private sqs?: { queue: SqsQueue, key: string }

  constructor (readonly url: string, public buckets: Set<string>, private readonly o: SqsImportOptions) {}

  start (): void {
    this.running = this.loop()
  }

  async stop (): Promise<void> {
    this.abort.abort()
    await this.running
    this.sqs?.queue.close()
  }

  private async loop (): Promise<void> {
    const { signal } = this.abort
    let failures = 0
    while (!signal.aborted) {
      try {
        const queue = await this.client()
        const messages = await queue.receive(signal)
        if (failures > 0) this.o.log.info('the SQS queue answers again', { queueUrl: this.url })
        failures = 0
        if (messages.length > 0) await this.handle(queue, messages, signal)
      } catch (err) {
        if (signal.aborted || isAbortError(err)) break
        failures++
        const delay = backoffMs(failures)
        this.o.metrics.importEvents.inc({ source: 'sqs', result: 'failed' })
        this.o.log.warn('polling the SQS queue failed; retrying', { queueUrl: this.url, error: describeSqsError(err), failures, retryInMs: delay })
        await sleep(delay, signal)
      }
    }
  }

  /**
   * The client for the queue, rebuilt when the bucket entry it was built from changes (new keys or
   * role). The first bucket's entry is used: a queue shared by DRAs normally serves one bucket.
   */
  private async client (): Promise<SqsQueue> {
    const bucket = [...this.buckets].sort()[0]
    const entry = await this.o.table.get(bucket)
    const key = `${bucket}\n${entry?.generation ?? ''}`
    if (this.sqs?.key !== key) {
      this.sqs?.queue.close()
      this.sqs = { queue: new SqsQueue(this.url, entry, this.o.credentials), key }
    }
    return this.sqs.queue
  }

  private async handle (queue: SqsQueue, messages: QueueMessage[], signal: AbortSignal): Promise<void> {
    const changes: ObjectChange[] = []
    let ignored = 0
    for (const m of messages) {
      let parsed
      try {
        parsed = parseEventBody(JSON.parse(m.body))
      } catch (err) {
        if (!(err instanceof SyntaxError) && !(err instanceof EventFormatError)) throw err
        // Deleted, not left: SQS would deliver it again after every visibility timeout, forever
        // (or until a redrive policy moves it), so it would poison the queue. Logged this once.
        this.o.log.warn('deleting a malformed SQS message', { queueUrl: this.url, messageId: m.messageId, error: err.message })
        ignored++
        continue
      }
      if (parsed.test) continue // s3:TestEvent, sent when the notification is configured
      for (const change of parsed.changes) {
        if (this.buckets.has(change.bucket)) changes.push(change)
        else ignored++
      }
      ignored += parsed.ignored
    }
    // Durable before the delete: a crash now leaves the messages in SQS, to come back.
    await this.o.queue.enqueue(changes)
    this.o.metrics.importEvents.inc({ source: 'sqs', result: 'received' }, changes.length)
    if (ignored > 0) this.o.metrics.importEvents.inc({ source: 'sqs', result: 'ignored' }, ignored)
    this.o.log.debug('S3 events from SQS queued', { queueUrl: this.url, messages: messages.length, changes: changes.length, ignored })
    const failed = await queue.delete(messages, signal)
    // Not deleted: delivered again later, and applying a change twice is harmless.
    for (const f of failed) this.o.log.warn('deleting an SQS message failed; it will be delivered again', { queueUrl: this.url, messageId: f.messageId, error: f.error })
  }
}

/** Waits `ms`, or less if `signal` fires. */
async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => {
    const done = (): void => { clearTimeout(timer); signal.removeEventListener('abort', done); resolve() }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done)
  })
}
