/**
 * The durable export queue (DESIGN.md "Export"). Namespace changes inside DRAs with an export
 * policy are queued in the same LevelDB batch as the change itself (FileSystem.onChange), so a
 * change that happened is a change that will be exported, whatever crashes when.
 *
 *   expq:<seq16> → ExportEntry   what to do for one path: 'put' (make S3 match the path's current
 *                                state) or 'delete' (remove its object)
 *   expp:<path>  → seq           the path's newest entry
 *
 * An entry names a path, not a snapshot: the exporter reads the path's state when it runs, so a
 * newer change of a path simply replaces its waiting entry (coalescing), and only the last state
 * reaches S3. If the path's entry is running, the new one waits behind it (per-path order), and
 * a file changed during its upload is exported again. Deletes never overtake earlier puts, so a
 * rename writes its new keys before the old ones go, and create-then-delete ends deleted.
 *
 * Entries of a DRA that is not AVAILABLE wait (a final error such as access denied makes the DRA
 * MISCONFIGURED: its entries wait for the health check to find it usable again instead of being
 * retried in a loop). Transient failures retry per entry with capped exponential backoff. Entries
 * are removed, in a batch serialized with namespace changes, only once done.
 */
import type { Store } from '../store/db'
import { QueueLoads } from './queue-loads'
import type { Namespace, Transaction } from '../namespace/namespace'
import { exportPathKey, exportQueueKey, exportQueueRange } from '../store/keys'
import type { NsChange } from '../fs/filesystem'
import { isDir } from '../namespace/inode'

export interface ExportEntry {
  seq: number
  path: string
  op: 'put' | 'delete'
  /** The content changed (else metadata only, or a new key for unchanged content). */
  content: boolean
  /** Epoch ms of the first queued change this entry stands for (age metric). */
  queuedAt: number
}

interface Slot extends ExportEntry { running?: boolean, notBefore?: number, attempts?: number }

/**
 * An entry waits this long after its path's last change before it runs, so that what tools do in
 * quick succession (cp -a: create, write, close, chmod, chown, utimes) becomes one export of the
 * final state; a path that keeps changing is exported at least every MAX_SETTLE_MS. Those tools
 * make their calls within milliseconds of the close; every millisecond more delays the last files
 * of a burst (at 300 ms, the wait was a quarter of the time 1,000 small files took to reach S3).
 */
const SETTLE_MS = 100
const MAX_SETTLE_MS = 5000

export type ExportOutcome = 'done' | 'retry' | 'park'
export type RunEntry = (entry: ExportEntry) => Promise<ExportOutcome>

const WINDOW = 10_000
const BACKOFF_MIN_MS = 500
const BACKOFF_MAX_MS = 60_000

export class ExportQueue {
  private window: Slot[] = []
  /** The newest window entry of each path: the whole truth while the window holds every stored entry. */
  private readonly newest = new Map<string, Slot>()
  private nextSeq: number
  private stored: number
  /** The newest committed entry's sequence number (commits come in sequence order: the namespace's lock). */
  private lastCommitted: number
  /** Every committed entry up to this one is in the window, or done: the rest is in LevelDB only. */
  private loadedUpTo = 0
  /** Entries in LevelDB only that a coalescing replaced: a load running meanwhile may still find them. */
  private readonly replacedBeyond = new Set<number>()
  /** Loads from the database: one at a time, each after the one before; retried when one fails. */
  private readonly loads = new QueueLoads()
  private readonly running = new Map<string, Promise<void>>()
  private stopped = true
  private timer?: NodeJS.Timeout
  private run?: RunEntry
  /** Paths queued by transactions not committed yet: path → entry (coalescing within a batch). */
  private readonly uncommitted = new WeakMap<Transaction, Map<string, ExportEntry>>()

  private constructor (
    private readonly store: Store,
    private readonly ns: Namespace,
    private readonly exported: (path: string) => boolean,
    last: number,
    count: number,
    private readonly concurrency: number | (() => number)
  ) {
    this.nextSeq = last + 1
    this.lastCommitted = last
    this.stored = count
  }

  /** `exported(path)`: the path lies in a DRA with an export policy (else nothing is queued). */
  /** `concurrency`: transfers at once, or a function asked at each scheduling (it may vary). */
  static async open (store: Store, ns: Namespace, exported: (path: string) => boolean, concurrency: number | (() => number) = 16): Promise<ExportQueue> {
    let last = 0
    let count = 0
    for await (const key of store.keys(exportQueueRange)) {
      last = parseInt(key.slice('expq:'.length), 16)
      count++
    }
    return new ExportQueue(store, ns, exported, last, count, concurrency)
  }

  get size (): number { return this.stored }

  /** Told when reading the queue from the database failed (it is read again, with backoff). */
  set onLoadFailure (report: ((err: unknown, retryInMs: number) => void) | undefined) { this.loads.onFailure = report }

  oldestAgeSeconds (): number {
    if (this.stored === 0 || this.window.length === 0) return 0
    return (Date.now() - Math.min(...this.window.slice(0, 100).map((e) => e.queuedAt))) / 1000
  }

  /** Bytes of content waiting to go up (the first WINDOW queued paths are counted). */
  async pendingBytes (sizeOf: (path: string) => Promise<number>): Promise<number> {
    let total = 0
    for (const e of this.window) if (e.op === 'put' && e.content) total += await sizeOf(e.path)
    return total
  }

  /** A change of `path` is waiting to be exported: import must not overwrite or delete it meanwhile. */
  async isPending (path: string): Promise<boolean> {
    return await this.newestSeq(path) !== undefined
  }

  /** The sequence number of the path's newest entry, if it has one. */
  private async newestSeq (path: string): Promise<number | undefined> {
    if (this.complete()) return this.newest.get(path)?.seq
    return await this.store.get<number>(exportPathKey(path))
  }

  /** Every stored entry is in the window (and `newest`): no need to ask LevelDB about a path. */
  private complete (): boolean {
    return this.loadedUpTo >= this.lastCommitted
  }

  /** FileSystem.onChange: queues, inside the change's own transaction, what S3 must learn. */
  async onChange (tx: Transaction, change: NsChange): Promise<void> {
    switch (change.kind) {
      case 'content': await this.add(tx, change.path, 'put', true); break
      case 'meta': await this.add(tx, change.path, 'put', false); break
      case 'removed': await this.add(tx, change.path, 'delete', false); break
      case 'renamed':
        // New keys first (puts), then the old ones go (deletes never overtake earlier puts).
        // The transaction is not committed yet: the tree is still found at its old path.
        for (const rel of change.dir ? await this.descendants(change.from) : ['']) await this.add(tx, change.to + rel, 'put', false)
        for (const rel of change.dir ? await this.descendants(change.from) : ['']) await this.add(tx, change.from + rel, 'delete', false)
    }
  }

  /** '' and '/x', '/x/y'… for every entry below a directory. */
  private async descendants (dirPath: string): Promise<string[]> {
    const out = ['']
    const walk = async (ino: number, rel: string): Promise<void> => {
      for await (const e of this.ns.list(ino)) {
        out.push(`${rel}/${e.name}`)
        const child = await this.ns.get(e.ino)
        if (isDir(child)) await walk(child.ino, `${rel}/${e.name}`)
      }
    }
    let ino = 1
    for (const name of dirPath.split('/').filter((n) => n !== '')) {
      const d = await this.ns.lookup(ino, name)
      if (d === undefined) return out
      ino = d.ino
    }
    await walk(ino, '')
    return out
  }

  private async add (tx: Transaction, path: string, op: 'put' | 'delete', content: boolean): Promise<void> {
    if (!this.exported(path)) return
    let pending = this.uncommitted.get(tx)
    if (pending === undefined) this.uncommitted.set(tx, pending = new Map())
    const now = Date.now()
    let queuedAt = now
    const previous = pending.get(path) ?? await this.waitingEntry(path)
    const coalesced = previous !== undefined && !this.running.has(path)
    if (coalesced) {
      // Coalesce: the waiting entry is replaced; its content flag and age carry over.
      tx.extra.push({ type: 'del', key: exportQueueKey(previous.seq) })
      if (previous.op === 'put' && op === 'put') content ||= previous.content
      queuedAt = previous.queuedAt
    }
    const entry: Slot = { seq: this.nextSeq++, path, op, content, queuedAt, notBefore: Math.min(now + SETTLE_MS, queuedAt + MAX_SETTLE_MS) }
    pending.set(path, entry)
    tx.extra.push({ type: 'put', key: exportQueueKey(entry.seq), value: entry }, { type: 'put', key: exportPathKey(path), value: entry.seq })
    tx.afterCommit(() => {
      this.uncommitted.delete(tx)
      if (coalesced) {
        const i = this.window.findIndex((e) => e.seq === previous.seq)
        if (i >= 0) this.window.splice(i, 1)
        else if (previous.seq > this.loadedUpTo) this.replacedBeyond.add(previous.seq)
        this.stored--
      }
      this.stored++
      // Into the window only behind every earlier entry: the window is a prefix of the queue, and
      // a load takes what lies past it (fill).
      const inOrder = this.complete() && this.window.length < WINDOW
      this.lastCommitted = entry.seq
      if (inOrder) {
        this.window.push(entry)
        this.newest.set(path, entry)
        this.loadedUpTo = entry.seq
      }
      this.kick()
    })
  }

  private async waitingEntry (path: string): Promise<ExportEntry | undefined> {
    if (this.complete()) return this.newest.get(path)
    const seq = await this.newestSeq(path)
    if (seq === undefined) return undefined
    return await this.store.get<ExportEntry>(exportQueueKey(seq))
  }

  start (run: RunEntry): void {
    this.run = run
    this.stopped = false
    this.kick()
  }

  /**
   * Drains for at most `graceMs` (while anything can run soon), then stops starting entries and
   * gives running ones what is left of the grace; whatever remains stays queued for the next start.
   */
  async stop (graceMs = 10_000): Promise<void> {
    const deadline = Date.now() + graceMs
    const runnableSoon = (): boolean => this.window.some((e) => e.running === true || (e.notBefore ?? 0) < Date.now() + 1000)
    while (!this.stopped && this.stored > 0 && Date.now() < deadline && runnableSoon()) await new Promise((resolve) => setTimeout(resolve, 50))
    this.stopped = true
    clearTimeout(this.timer)
    this.loads.stop()
    const left = Math.max(1000, deadline - Date.now())
    await Promise.race([Promise.allSettled([...this.running.values()]), new Promise((resolve) => setTimeout(resolve, left).unref())])
  }

  /** Wakes the scheduler (e.g. when a DRA became AVAILABLE again). */
  kick (): void {
    if (this.stopped) return
    this.loads.run(async () => await this.fill(), () => { this.schedule() }, () => { this.kick() })
  }

  /**
   * Loads the next part of the queue from LevelDB when the window runs low: what lies past
   * everything loaded before, up to the newest committed entry, less entries replaced meanwhile.
   */
  private async fill (): Promise<void> {
    const upTo = this.lastCommitted
    const room = WINDOW - this.window.length
    if (this.window.length >= WINDOW / 2 || this.loadedUpTo >= upTo) return
    let taken = 0
    let last = this.loadedUpTo
    for await (const [, e] of this.store.entries<ExportEntry>({ gt: exportQueueKey(this.loadedUpTo), lt: exportQueueKey(upTo + 1), limit: room })) {
      taken++
      last = e.seq
      if (this.replacedBeyond.has(e.seq)) continue
      this.window.push(e)
      if ((this.newest.get(e.path)?.seq ?? 0) < e.seq) this.newest.set(e.path, e)
    }
    this.loadedUpTo = taken === room ? last : upTo
    for (const seq of this.replacedBeyond) if (seq <= this.loadedUpTo) this.replacedBeyond.delete(seq)
  }

  private schedule (): void {
    const run = this.run
    if (this.stopped || run === undefined) return
    const now = Date.now()
    let wakeAt = Infinity
    let earlierPut = false
    const seen = new Set<string>()
    const slots = typeof this.concurrency === 'number' ? this.concurrency : this.concurrency()
    for (const e of this.window) {
      if (this.running.size >= slots) break
      const blocked = seen.has(e.path) || e.running === true || this.running.has(e.path) || (e.op === 'delete' && earlierPut)
      seen.add(e.path)
      if (e.op === 'put') earlierPut = true
      if (blocked) continue
      if ((e.notBefore ?? 0) > now) { wakeAt = Math.min(wakeAt, e.notBefore ?? 0); continue }
      this.start1(e, run)
    }
    clearTimeout(this.timer)
    if (wakeAt !== Infinity) this.timer = setTimeout(() => this.kick(), wakeAt - now)
  }

  private start1 (e: Slot, run: RunEntry): void {
    e.running = true
    const done = run(e).then(async (outcome) => {
      if (outcome === 'done') await this.finish(e)
      else if (outcome === 'retry') {
        e.attempts = (e.attempts ?? 0) + 1
        e.notBefore = Date.now() + Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (e.attempts - 1))
      } else {
        e.notBefore = Date.now() + BACKOFF_MAX_MS // parked: its DRA is not usable; kick() on recovery
      }
    }, () => {
      e.notBefore = Date.now() + BACKOFF_MAX_MS
    }).finally(() => {
      e.running = false
      this.running.delete(e.path)
      this.kick()
    })
    this.running.set(e.path, done)
  }

  /**
   * Removes a done entry, serialized with namespace changes (which may have queued a newer one);
   * grouped with other done entries: one batch for a burst.
   */
  private async finish (e: ExportEntry): Promise<void> {
    await this.ns.mutateGrouped(async (tx) => {
      tx.extra.push({ type: 'del', key: exportQueueKey(e.seq) })
      if (await this.newestSeq(e.path) === e.seq) tx.extra.push({ type: 'del', key: exportPathKey(e.path) })
      // Under the lock, as add() reads it: a change queued right after this one sees it gone.
      tx.afterCommit(() => {
        const i = this.window.indexOf(e)
        if (i >= 0) this.window.splice(i, 1)
        if (this.newest.get(e.path) === e) this.newest.delete(e.path)
        this.stored--
      })
    })
  }

  /**
   * The last writer of `path` closed: its entry, held back while the file was open (the exporter
   * answered 'retry'), runs once the settle time has passed rather than at the end of its backoff.
   */
  wake (path: string): void {
    const e = this.newest.get(path)
    if (e === undefined || e.running === true) return
    e.notBefore = Math.min(e.notBefore ?? 0, Date.now() + SETTLE_MS)
    this.kick()
  }

  /** Entries waiting for a DRA to become usable again: wake them now. */
  unpark (): void {
    for (const e of this.window) if (e.running !== true) delete e.notBefore
    this.kick()
  }
}
