/**
 * The bounded local cache (beyond FSx for Lustre; its File Cache sibling calls it AUTO_RELEASE_DATA):
 * with a capacity configured, local content is kept below it by releasing the least recently used
 * clean files, and writes that cannot get room fail with ENOSPC instead of filling the disk.
 *
 *   use          local bytes (the namespace counts them, durably: src/namespace/namespace.ts)
 *                + reservations (writes and loads in flight)
 *   high mark    above it, a background round releases files until use is at the low mark
 *   capacity     a write (or a load of a released file) that would go above it first waits for a
 *                round of its own; if nothing can be released it fails with ENOSPC, logged once
 *                per LOG_EVERY_MS. Nothing already written is touched: only `exists archived` files
 *                (clean, their content in S3 as it is here) that nobody has open are released.
 *
 * Choosing victims never holds the tree in memory: a round streams the `local:` index (inodes with
 * local content, not the namespace) and keeps, in a max-heap on last use, only the oldest files
 * whose bytes add up to what must be freed. "Last use" is the newest of the daemon's own record of
 * opens, reads and writes (`touch`; atime is saved relatime-style only) and the record's
 * max(atime, mtime, ctime), the "last access" of FSx release tasks (spec/fsx-dra.md §15).
 */
import type { Logger } from 'winston'
import { fsError } from '../util/errors'

export interface CacheLimits {
  /** Bytes; undefined = unbounded (use is still counted and reported). */
  capacity?: number
  /** Percent of capacity. */
  highWatermark: number
  lowWatermark: number
}

/** What the cache needs from the file system (src/fs/filesystem.ts `cacheHost()`). */
export interface CacheHost {
  /** Local bytes, saved and unsaved. */
  localBytes: () => number
  /** Inodes with local content, streamed. */
  localFiles: () => AsyncIterable<{ ino: number, bytes: number }>
  /** A file that may be released now: its bytes and its last use (ms) as its record tells. */
  candidate: (ino: number) => Promise<{ bytes: number, lastUsedMs: number } | undefined>
  /** Releases a file's content; the bytes freed (0: it is not releasable any more). */
  release: (ino: number) => Promise<number>
  /** Changes queued for export: files that may become releasable soon. */
  pendingExports?: () => number
  /** Grows whenever the namespace changes (a file exported, loaded, written…). */
  changes?: () => number
  /** One step of counting records saved before local bytes were counted; true when done. */
  countStep?: () => Promise<boolean>
}

export interface CacheOptions {
  log: Logger
  /** Longest a write waits for room while exports that may free some are queued. */
  waitMs: number
  onEvicted?: (bytes: number) => void
  /** How often use is checked against the high mark (background rounds). */
  checkMs?: number
}

export interface CacheStatus {
  bytes: number
  capacity?: number
  highWatermarkBytes?: number
  lowWatermarkBytes?: number
  evictions: number
  evictedBytes: number
  /** Reservations of writes and loads in flight (included in bytes). */
  reservedBytes: number
  /** Records from before local-byte counting are still being counted: bytes is too low meanwhile. */
  counting?: true
}

/** Files remembered as recently used (the oldest are forgotten; their records still say). */
const RECENT_MAX = 1 << 20
/** Most victims one round picks (memory bound); a later round picks more if needed. */
const ROUND_MAX_FILES = 10_000
/** After a round freed nothing and nothing changed since, no round for this long (background rounds). */
const FRUITLESS_MS = 5000
const LOG_EVERY_MS = 10_000
const POLL_MS = 200

interface Victim { ino: number, bytes: number, lastUsedMs: number }

export class Cache {
  private reserved = 0
  private readonly recent = new Map<number, number>()
  private round?: Promise<number>
  private fruitlessAt = 0
  /** What had happened (changes, touches) when a round last freed nothing; undefined: it freed some. */
  private fruitlessState?: string
  private touches = 0
  private lastNoSpaceLog = 0
  private suppressed = 0
  private timer?: NodeJS.Timeout
  private counting?: Promise<void>
  private stopped = false
  private countDone = false
  evictions = 0
  evictedBytes = 0

  constructor (private readonly host: CacheHost, private limits: CacheLimits, private readonly o: CacheOptions) {}

  get capacity (): number | undefined { return this.limits.capacity }

  /** New limits (config change): a lower capacity shows at the next check. */
  configure (limits: CacheLimits): void {
    this.limits = limits
    this.kick()
  }

  used (): number {
    return this.host.localBytes() + this.reserved
  }

  private mark (percent: number): number | undefined {
    const cap = this.limits.capacity
    return cap === undefined ? undefined : Math.floor(cap * percent / 100)
  }

  /** Background checks against the high mark; counting of old records first. */
  start (): void {
    this.timer = setInterval(() => this.kick(), this.o.checkMs ?? 1000)
    this.timer.unref()
    if (this.host.countStep !== undefined) this.counting = this.countAll(this.host.countStep)
    else this.countDone = true
  }

  private async countAll (step: () => Promise<boolean>): Promise<void> {
    try {
      let first = true
      while (!this.stopped && !await step()) {
        if (first) this.o.log.info('counting local bytes of files saved before the cache counted them (once)')
        first = false
        await new Promise((resolve) => setImmediate(resolve))
      }
      this.countDone = !this.stopped
    } catch (err) {
      this.o.log.error('counting local bytes failed; it resumes at the next start', { error: String(err) })
    }
  }

  async stop (): Promise<void> {
    this.stopped = true
    clearInterval(this.timer)
    await this.counting
    await this.round?.catch(() => undefined)
  }

  /** The file was opened, read or written: it is the most recently used now. */
  touch (ino: number): void {
    this.touches++
    this.recent.delete(ino)
    this.recent.set(ino, Date.now())
    if (this.recent.size > RECENT_MAX) {
      for (const key of this.recent.keys()) { this.recent.delete(key); break }
    }
  }

  /**
   * Room for `bytes` more local bytes (a write that grows a file, a load of a released file),
   * released files first if needed; throws ENOSPC when there is none. Pair with unreserve() once
   * the bytes are counted by the namespace (or were not written).
   */
  async reserve (bytes: number, what: string): Promise<void> {
    const cap = this.limits.capacity
    if (cap !== undefined && bytes > 0) {
      const deadline = Date.now() + this.o.waitMs
      while (this.used() + bytes > cap) {
        const freed = await this.evictTo(Math.min(this.mark(this.limits.lowWatermark) ?? cap, cap - bytes), true)
        if (this.used() + bytes <= cap) break
        if (freed > 0) continue
        // Nothing releasable now; queued exports may make some files clean soon.
        if ((this.host.pendingExports?.() ?? 0) === 0 || Date.now() + POLL_MS > deadline) {
          this.logNoSpace(bytes, what)
          throw fsError('ENOSPC', `the local cache is full (${this.used()} of ${cap} bytes) and nothing can be released`)
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_MS))
      }
    }
    this.reserved += bytes
    this.kick()
  }

  unreserve (bytes: number): void {
    this.reserved -= bytes
  }

  private logNoSpace (bytes: number, what: string): void {
    const now = Date.now()
    if (now - this.lastNoSpaceLog < LOG_EVERY_MS) { this.suppressed++; return }
    this.o.log.error('cache full: ENOSPC', {
      event: 'CacheFull',
      need: bytes,
      for: what,
      used: this.used(),
      capacity: this.limits.capacity,
      reason: 'every local file is dirty (not exported yet), open or being loaded: nothing can be released',
      ...(this.suppressed > 0 ? { alsoRefusedSinceLastLog: this.suppressed } : {})
    })
    this.lastNoSpaceLog = now
    this.suppressed = 0
  }

  /** Above the high mark: a background round down to the low mark. */
  private kick (): void {
    const high = this.mark(this.limits.highWatermark)
    if (high === undefined || this.stopped || this.round !== undefined || this.used() <= high) return
    if (this.nothingNew() && Date.now() - this.fruitlessAt < FRUITLESS_MS) return
    this.evictTo(this.mark(this.limits.lowWatermark) ?? 0, false).catch((err: unknown) =>
      this.o.log.error('cache eviction failed', { error: String(err), stack: (err as Error)?.stack }))
  }

  /**
   * Releases least recently used files until use ≤ target; the bytes freed. One round at a time:
   * a caller arriving during a round waits for it instead of starting another.
   */
  async evictTo (target: number, waiting: boolean): Promise<number> {
    if (this.round !== undefined) return await this.round
    // A round that found nothing releasable finds nothing again until something changed.
    if (waiting && this.nothingNew()) return 0
    const before = this.state()
    this.round = this.evictRound(target)
    try {
      const freed = await this.round
      if (freed === 0) { this.fruitlessAt = Date.now(); this.fruitlessState = before } else this.fruitlessState = undefined
      return freed
    } finally {
      this.round = undefined
    }
  }

  private state (): string {
    return `${this.host.changes?.() ?? Date.now()}/${this.touches}`
  }

  private nothingNew (): boolean {
    return this.fruitlessState !== undefined && this.fruitlessState === this.state()
  }

  private async evictRound (target: number): Promise<number> {
    const need = this.used() - target
    if (need <= 0) return 0
    const victims = await this.pickVictims(need)
    let freed = 0
    for (const v of victims) {
      if (this.used() <= target || this.stopped) break
      let n: number
      try {
        n = await this.host.release(v.ino)
      } catch (err) {
        // One file that cannot be released (a disk or database error) must not stop the round.
        this.o.log.error('releasing a file to make room failed', { ino: v.ino, error: String(err) })
        continue
      }
      if (n <= 0) continue
      freed += n
      this.evictions++
      this.evictedBytes += n
      this.recent.delete(v.ino)
      this.o.onEvicted?.(n)
    }
    this.o.log.debug('cache round', { target, freed, files: victims.length, used: this.used() })
    return freed
  }

  /** The least recently used releasable files whose bytes add up to `need`, oldest first. */
  private async pickVictims (need: number): Promise<Victim[]> {
    const heap = new MaxHeap<Victim>((a, b) => a.lastUsedMs - b.lastUsedMs)
    let sum = 0
    for await (const { ino } of this.host.localFiles()) {
      if (this.stopped) break
      const c = await this.host.candidate(ino)
      if (c === undefined || c.bytes <= 0) continue
      const lastUsedMs = Math.max(c.lastUsedMs, this.recent.get(ino) ?? 0)
      const top = heap.peek()
      if (top !== undefined && sum >= need && top.lastUsedMs <= lastUsedMs) continue
      heap.push({ ino, bytes: c.bytes, lastUsedMs })
      sum += c.bytes
      // Keep only what is needed: drop the newest while the rest still covers `need`.
      for (let t = heap.peek(); t !== undefined && heap.size > 1 && (sum - t.bytes >= need || heap.size > ROUND_MAX_FILES); t = heap.peek()) {
        sum -= t.bytes
        heap.pop()
      }
    }
    return heap.drain().reverse()
  }

  status (): CacheStatus {
    const s: CacheStatus = { bytes: this.used(), evictions: this.evictions, evictedBytes: this.evictedBytes, reservedBytes: this.reserved }
    if (this.limits.capacity !== undefined) {
      s.capacity = this.limits.capacity
      s.highWatermarkBytes = this.mark(this.limits.highWatermark)
      s.lowWatermarkBytes = this.mark(this.limits.lowWatermark)
    }
    if (!this.countDone) s.counting = true
    return s
  }
}

/** A binary max-heap. */
export class MaxHeap<T> {
  private readonly items: T[] = []
  constructor (private readonly cmp: (a: T, b: T) => number) {}

  get size (): number { return this.items.length }
  peek (): T | undefined { return this.items[0] }

  push (item: T): void {
    const a = this.items
    a.push(item)
    let i = a.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (this.cmp(a[i], a[p]) <= 0) break
      ;[a[i], a[p]] = [a[p], a[i]]
      i = p
    }
  }

  pop (): T | undefined {
    const a = this.items
    const top = a[0]
    const last = a.pop()
    if (a.length > 0 && last !== undefined) {
      a[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < a.length && this.cmp(a[l], a[m]) > 0) m = l
        if (r < a.length && this.cmp(a[r], a[m]) > 0) m = r
        if (m === i) break
        ;[a[i], a[m]] = [a[m], a[i]]
        i = m
      }
    }
    return top
  }

  /** Every item, largest first; empties the heap. */
  drain (): T[] {
    const out: T[] = []
    for (let x = this.pop(); x !== undefined; x = this.pop()) out.push(x)
    return out
  }
}

/** "10GiB", "500Mi", "2G" (SI: 10^9), "4096" or a number → bytes; undefined if not a size. */
export function parseSize (value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value > 0 ? value : undefined
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:([KMGTP])(i)?B?|B)?\s*$/i.exec(value)
  if (m === null) return undefined
  const power = m[2] === undefined ? 0 : 'KMGTP'.indexOf(m[2].toUpperCase()) + 1
  const base = m[3] !== undefined ? 1024 : 1000
  const bytes = Math.floor(Number(m[1]) * base ** power)
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : undefined
}
