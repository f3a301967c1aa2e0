/**
 * The durable queue of S3 changes for automatic import (webhook and SQS deliveries). A delivery
 * is acknowledged only once its changes are in LevelDB (one synced batch), and a change leaves the
 * queue only in the batch after it was applied, so a crash loses nothing and replays at most the
 * changes in flight (applying is idempotent: it compares with what S3 holds now).
 *
 * Changes of one key are applied in queue order, one at a time; different keys in parallel (up to
 * `concurrency`). Memory holds a window of the queue, refilled from the database as it drains, so a
 * backlog of any size costs disk, not RAM. A failure that may pass (S3 unreachable, throttled) keeps
 * the change queued and pauses the queue with capped exponential backoff.
 */
import type { Store } from '../store/db'
import { QueueLoads } from './queue-loads'
import { importQueueKey, importQueueRange } from '../store/keys'
import type { ObjectChange } from './events'

export interface QueuedChange { seq: number, change: ObjectChange, receivedAt: number }

interface Slot extends QueuedChange { running?: boolean }

const WINDOW = 5000
const BACKOFF_MIN_MS = 500
const BACKOFF_MAX_MS = 60_000

export type ApplyChange = (change: ObjectChange) => Promise<void>

export class ImportQueue {
  private window: Slot[] = []
  private nextSeq: number
  private stored: number
  /** The highest sequence number taken into the window (or known to be absent): loads go past it. */
  private loadedUpTo = 0
  /** The first sequence number of each delivery whose batch is being written. */
  private readonly writing = new Set<number>()
  /** Loads from the database: one at a time, each after the one before; retried when one fails. */
  private readonly loads = new QueueLoads()
  private readonly busyKeys = new Set<string>()
  private readonly inFlight = new Set<Promise<void>>()
  private backoffMs = 0
  private pausedUntil = 0
  private stopped = true
  private wakeTimer?: NodeJS.Timeout
  private apply?: ApplyChange
  private onRetry?: (change: ObjectChange, err: unknown, delayMs: number) => void

  private constructor (private readonly store: Store, last: number, count: number, private readonly concurrency: number) {
    this.nextSeq = last + 1
    this.stored = count
  }

  static async open (store: Store, concurrency = 8): Promise<ImportQueue> {
    let last = 0
    let count = 0
    for await (const key of store.keys(importQueueRange)) {
      last = parseInt(key.slice('impq:'.length), 16)
      count++
    }
    return new ImportQueue(store, last, count, concurrency)
  }

  /** Durably queues changes (one synced batch); resolves once they survive a crash. */
  async enqueue (changes: ObjectChange[]): Promise<void> {
    if (changes.length === 0) return
    const now = Date.now()
    const entries = changes.map((change) => ({ seq: this.nextSeq++, change, receivedAt: now }))
    const first = entries[0].seq
    this.writing.add(first)
    try {
      await this.store.batch(entries.map((e) => ({ type: 'put' as const, key: importQueueKey(e.seq), value: e })), { sync: true })
    } finally {
      this.writing.delete(first)
    }
    this.stored += entries.length
    this.kick()
  }

  /** Changes waiting or being applied. */
  get size (): number { return this.stored }

  /** Told when reading the queue from the database failed (it is read again, with backoff). */
  set onLoadFailure (report: ((err: unknown, retryInMs: number) => void) | undefined) { this.loads.onFailure = report }

  /** Seconds since the oldest queued change was received (0 when none is queued). */
  oldestAgeSeconds (): number {
    const oldest = this.window[0]
    return this.stored === 0 || oldest === undefined ? 0 : (Date.now() - oldest.receivedAt) / 1000
  }

  start (apply: ApplyChange, onRetry?: (change: ObjectChange, err: unknown, delayMs: number) => void): void {
    this.apply = apply
    this.onRetry = onRetry
    this.stopped = false
    this.kick()
  }

  /**
   * Stops taking changes and waits (at most `graceMs`: S3 may hang) for those being applied; an
   * unfinished one stays queued and is applied again at the next start.
   */
  async stop (graceMs = 5000): Promise<void> {
    this.stopped = true
    clearTimeout(this.wakeTimer)
    this.loads.stop()
    await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((resolve) => setTimeout(resolve, graceMs).unref())])
  }

  private kick (): void {
    if (this.stopped) return
    this.loads.run(async () => await this.fill(), () => { this.pump() }, () => { this.kick() })
  }

  /**
   * Loads the next part of the queue from the database when the window runs low. Only what lies
   * past everything loaded before, and only up to where every earlier delivery is written: a load
   * must neither take a change a second time (it may have been applied and removed meanwhile) nor
   * pass over one whose batch lands after a later delivery's.
   */
  private async fill (): Promise<void> {
    let upTo = this.nextSeq - 1
    for (const first of this.writing) upTo = Math.min(upTo, first - 1)
    const room = WINDOW - this.window.length
    if (this.window.length >= WINDOW / 2 || this.loadedUpTo >= upTo) return
    const loaded: Slot[] = []
    for await (const [, q] of this.store.entries<QueuedChange>({ gt: importQueueKey(this.loadedUpTo), lt: importQueueKey(upTo + 1), limit: room })) loaded.push(q)
    this.window.push(...loaded)
    this.loadedUpTo = loaded.length === room ? loaded[loaded.length - 1].seq : upTo
  }

  private pump (): void {
    if (this.stopped || this.apply === undefined) return
    const wait = this.pausedUntil - Date.now()
    if (wait > 0) {
      clearTimeout(this.wakeTimer)
      this.wakeTimer = setTimeout(() => this.kick(), wait)
      return
    }
    const blocked = new Set<string>()
    for (const q of this.window) {
      if (this.inFlight.size >= this.concurrency) break
      const id = `${q.change.bucket}/${q.change.key}`
      if (q.running === true) { blocked.add(id); continue }
      // A key's changes go in order: not while an earlier one of the same key waits or runs.
      if (this.busyKeys.has(id) || blocked.has(id)) { blocked.add(id); continue }
      blocked.add(id)
      this.run(q, id)
    }
  }

  private run (q: Slot, id: string): void {
    const apply = this.apply
    if (apply === undefined) return
    q.running = true
    this.busyKeys.add(id)
    const done: Promise<void> = apply(q.change).then(async () => {
      await this.store.batch([{ type: 'del', key: importQueueKey(q.seq) }])
      this.window.splice(this.window.indexOf(q), 1) // q is there: only its run takes it out
      this.stored--
      this.backoffMs = 0
    }, (err: unknown) => {
      this.backoffMs = Math.min(BACKOFF_MAX_MS, Math.max(BACKOFF_MIN_MS, this.backoffMs * 2))
      this.pausedUntil = Date.now() + this.backoffMs
      this.onRetry?.(q.change, err, this.backoffMs)
    }).finally(() => {
      q.running = false
      this.busyKeys.delete(id)
      this.inFlight.delete(done)
      this.kick()
    })
    this.inFlight.add(done)
  }
}
