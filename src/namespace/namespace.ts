/**
 * The namespace: inodes, directory entries and xattrs in LevelDB, with bounded caches in front.
 *
 * Every change to the namespace runs inside `mutate()`: one at a time (a FIFO mutex), collecting its
 * writes in a Transaction that is committed as ONE LevelDB batch, so a crash leaves either all of an
 * operation or none of it. Caches are updated only after the batch is written.
 *
 * Reads (lookup, get) do not take the mutex. A read that goes to LevelDB while a mutation commits
 * could bring back a value older than the cache's, so a loaded value is cached only when no
 * mutation committed during the read (`generation` unchanged).
 *
 * The write path of open files does not go through mutate(): it changes size and times of the cached
 * inode in memory and marks it dirty; dirty inodes are saved by `flush()` (on close, fsync, a timer
 * and shutdown). Open and dirty inodes are pinned in the cache, so the in-memory copy stays the one.
 *
 * Memory is bounded whatever the number of files: only the caches hold entries, and start-up reads
 * no more than the `meta:` keys and the orphan list.
 *
 * Local bytes (what the bounded cache, src/content/cache.ts, limits) are counted here, where every
 * saved inode passes: each inode record carries the bytes it counts (`local`, inode.ts localBytes),
 * and every commit adds the difference to `meta:local-bytes` and keeps the `local:` index of inodes
 * with local content, in the same batch. So the total is right after kill -9 without a scan, whatever
 * the operation (write, truncate, unlink, release, load, import). What the write path changed in
 * memory and not yet saved is added on top (`localBytes()`), from the inodes in `uncounted`.
 * A database from before this counting is counted once, in the background (`countStep`).
 */
import { RefCounts } from '../util/ref-counts'
import { Store, type Op } from '../store/db'
import {
  META_NEXT_INO, META_SYNCED, META_LOCAL_BYTES, META_LOCAL_SCAN, inodeKey, direntKey, xattrKey, orphanKey, localKey,
  direntRange, xattrRange, orphanRange, localRange, inodeRange, listedKey, listedRange, childName, direntParent, orphanIno, keyIno
} from '../store/keys'
import { Mutex } from '../util/mutex'
import { Lru } from '../util/lru'
import { fsError } from '../util/errors'
import {
  type Inode, type InodeRecord, type DirentRecord, encodeInode, decodeInode, localBytes, isDir, S_IFMT, S_IFDIR, ROOT_INO
} from './inode'
import { nowNs } from './clock'
import { KnownDirs } from './known-dirs'

export const NAME_MAX = 255

interface Grouped { fn: (tx: Transaction) => Promise<unknown>, resolve: (value: unknown) => void, reject: (err: unknown) => void }

export interface NamespaceOptions {
  inodeCacheSize?: number
  direntCacheSize?: number
}

/** Directories a commit wrote (as they are now), and those it deleted (or failed to write). */
/** After a commit: the directories it wrote, as written; the other inodes it wrote or deleted. */
export interface AttrsChange { dirs: Inode[], stale: number[] }

export class Namespace {
  private readonly lock = new Mutex()
  private readonly inodes: Lru<number, Inode>
  private readonly dirents: Lru<string, DirentRecord>
  private readonly known = new KnownDirs()
  /** Open-file reference counts: pinned inodes are never evicted. */
  private readonly pins = new RefCounts<number>()
  private readonly dirty = new Set<number>()
  private generation = 0
  private nextIno = ROOT_INO + 1
  /** meta:local-bytes as last committed. */
  private savedLocal = 0
  /**
   * Cached inodes whose in-memory local bytes may differ from what their record counts (the write
   * path's unsaved size changes). INVARIANT: every inode whose localBytes() differs from `counted`
   * is in here or not in memory at all.
   */
  private readonly uncounted = new Set<number>()
  /** While records from before local-byte counting remain: the last inode key counted ('' = none yet). */
  private scanAfter?: string
  /** mutateGrouped() calls waiting for their shared transaction. */
  private group?: Grouped[]
  private attrsChanged?: (change: AttrsChange) => void

  private constructor (readonly store: Store, opts: NamespaceOptions) {
    this.inodes = new Lru(opts.inodeCacheSize ?? 100_000, (ino) => this.pins.has(ino) || this.dirty.has(ino))
    // 100,000 names: with 200,000, the peak RSS of `find .` over 1M files was 295–311 MB (goal 300);
    // with 100,000, 261–292 MB, and `find .`, `du -s` and `ls -l` ran as fast.
    this.dirents = new Lru(opts.direntCacheSize ?? 100_000)
  }

  /** Opens the namespace, creating the root directory on first use. */
  static async open (store: Store, root: { uid: number, gid: number, mode: number }, opts: NamespaceOptions = {}): Promise<Namespace> {
    const ns = new Namespace(store, opts)
    ns.nextIno = (await store.get<number>(META_NEXT_INO)) ?? ROOT_INO + 1
    const saved = await store.get<number>(META_LOCAL_BYTES)
    ns.savedLocal = saved ?? 0
    ns.scanAfter = await store.get<string>(META_LOCAL_SCAN)
    if (saved === undefined && await store.get(inodeKey(ROOT_INO)) !== undefined) {
      // Inodes saved before local bytes were counted: count them in the background (countStep).
      ns.scanAfter = ''
      await store.batch([{ type: 'put', key: META_LOCAL_BYTES, value: 0 }, { type: 'put', key: META_LOCAL_SCAN, value: '' }], { sync: true })
    }
    if (await store.get(inodeKey(ROOT_INO)) === undefined) {
      const t = nowNs()
      const rootInode: Inode = {
        ino: ROOT_INO, mode: S_IFDIR | (root.mode & 0o7777), uid: root.uid, gid: root.gid,
        nlink: 2, size: 0, rdev: 0, atimeNs: t, mtimeNs: t, ctimeNs: t
      }
      await store.batch([
        { type: 'put', key: inodeKey(ROOT_INO), value: encodeInode(rootInode) },
        { type: 'put', key: META_NEXT_INO, value: ns.nextIno },
        { type: 'put', key: META_LOCAL_BYTES, value: 0 }
      ], { sync: true })
    }
    return ns
  }

  // ---- reads ----

  async get (ino: number): Promise<Inode> {
    const cached = this.inodes.get(ino)
    if (cached !== undefined) return cached
    const generation = this.generation
    const record = await this.store.get<InodeRecord>(inodeKey(ino))
    if (record === undefined) throw fsError('ENOENT', `inode ${ino} does not exist`)
    const again = this.inodes.get(ino)
    if (again !== undefined) return again
    const inode = decodeInode(ino, record)
    if (generation === this.generation) this.inodes.set(ino, inode)
    return inode
  }

  async lookup (parent: number, name: string): Promise<DirentRecord | undefined> {
    if (Buffer.byteLength(name) > NAME_MAX) throw fsError('ENAMETOOLONG', `name longer than ${NAME_MAX} bytes`)
    const key = direntKey(parent, name)
    const cached = this.dirents.get(key)
    if (cached !== undefined) return cached
    if (!this.known.mayHave(parent, name)) return undefined
    const generation = this.generation
    const dirent = await this.store.get<DirentRecord>(key)
    if (dirent !== undefined && generation === this.generation) this.dirents.set(key, dirent)
    return dirent
  }

  /**
   * Many lookups at once, as they are saved, not cached (an import's names, mostly new: nothing to
   * keep). Only inside a mutation: no commit can come between the read and the caller's use.
   */
  async lookupMany (pairs: Array<{ parent: number, name: string }>): Promise<Array<DirentRecord | undefined>> {
    const keys = pairs.map((p) => direntKey(p.parent, p.name))
    const saved = await this.store.getMany<DirentRecord>(keys)
    return keys.map((key, i) => this.dirents.peek(key) ?? saved[i])
  }

  /** Directory entries in name order, streamed. */
  async * list (dir: number): AsyncGenerator<{ name: string } & DirentRecord> {
    for await (const [key, dirent] of this.store.entries<DirentRecord>(direntRange(dir))) {
      yield { name: childName(key), ...dirent }
    }
  }

  async isEmptyDir (dir: number): Promise<boolean> {
    for await (const _ of this.store.keys({ ...direntRange(dir), limit: 1 })) return false
    return true
  }

  async getXattr (ino: number, name: string): Promise<Buffer | undefined> {
    const value = await this.store.get<string>(xattrKey(ino, name))
    return value === undefined ? undefined : Buffer.from(value, 'base64')
  }

  async listXattrs (ino: number): Promise<string[]> {
    const names: string[] = []
    for await (const key of this.store.keys(xattrRange(ino))) names.push(childName(key))
    return names
  }

  // ---- changes ----

  /**
   * After each commit that wrote or deleted inodes, before the change's caller goes on: copies of
   * their attributes kept elsewhere (the FUSE binding's) must take the directories written and
   * drop the rest.
   */
  onAttrsChanged (listener: (change: AttrsChange) => void): void {
    this.attrsChanged = listener
  }

  /**
   * Runs fn alone and commits what it wrote as one atomic batch. `cold`: what the batch writes
   * enters the caches only where already cached (an import of many entries no one has looked at
   * must not push out the working set, nor hold them all in memory).
   */
  mutate<T> (fn: (tx: Transaction) => Promise<T>, opts: { sync?: boolean, cold?: boolean } = {}): Promise<T> {
    return this.lock.run(async () => {
      const tx = new Transaction(this)
      const result = await fn(tx)
      await this.commit(tx, opts.sync ?? false, opts.cold ?? false)
      for (const after of tx.afterCommitted) after()
      return result
    })
  }

  /**
   * Like mutate(), for small changes that need not commit alone (export's bookkeeping): those that
   * arrive while one waits for the lock share its transaction and its batch. One by one, each held
   * the lock through its own LevelDB write, and a writer's create waited behind a burst of them.
   * Each fn's result or error is its own; fn must not throw after writing into tx (what it wrote
   * would be committed with the others).
   */
  mutateGrouped<T> (fn: (tx: Transaction) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let group = this.group
      if (group === undefined) {
        const members: Grouped[] = group = this.group = []
        this.mutate(async (tx) => {
          this.group = undefined // from here on, arrivals start the next group
          const outcomes: Array<{ value: unknown } | { error: unknown }> = []
          for (const m of members) outcomes.push(await m.fn(tx).then((value) => ({ value }), (error: unknown) => ({ error })))
          return outcomes
        }).then(
          (outcomes) => outcomes.forEach((o, i) => { if ('error' in o) members[i].reject(o.error); else members[i].resolve(o.value) }),
          (err: unknown) => { for (const m of members) m.reject(err) }
        )
      }
      group.push({ fn, resolve: resolve as (value: unknown) => void, reject })
    })
  }

  private async commit (tx: Transaction, sync: boolean, cold: boolean): Promise<void> {
    const ops: Op[] = []
    // Local bytes: each saved record says what it counts, the total moves by the difference.
    const counts: Array<[Inode, number]> = []
    let delta = 0
    for (const inode of tx.inodes.values()) {
      const local = localBytes(inode)
      ops.push({ type: 'put', key: inodeKey(inode.ino), value: { ...encodeInode(inode), local } })
      if (local !== (inode.counted ?? 0)) ops.push(local > 0 ? { type: 'put', key: localKey(inode.ino), value: local } : { type: 'del', key: localKey(inode.ino) })
      delta += local - (inode.counted ?? 0)
      counts.push([inode, local])
      if (inode.listedOnly !== undefined) ops.push({ type: 'put', key: listedKey(inode.ino), value: 1 })
      this.dirty.delete(inode.ino)
    }
    for (const [ino, counted] of tx.deletedInodes) {
      ops.push({ type: 'del', key: inodeKey(ino) }, { type: 'del', key: localKey(ino) })
      delta -= counted
    }
    if (delta !== 0) ops.push({ type: 'put', key: META_LOCAL_BYTES, value: this.savedLocal + delta })
    for (const [key, dirent] of tx.dirents) {
      ops.push(dirent === null ? { type: 'del', key } : { type: 'put', key, value: dirent })
    }
    ops.push(...tx.extra)
    if (tx.allocated) ops.push({ type: 'put', key: META_NEXT_INO, value: this.nextIno })
    // A sync batch flushes LevelDB's log, and with it every earlier write: fsync(2) of a file whose
    // metadata is already saved (but not yet on disk) still needs one, so write something.
    if (sync && ops.length === 0) ops.push({ type: 'put', key: META_SYNCED, value: Date.now() })
    this.generation++
    try {
      await this.store.batch(ops, { sync })
    } catch (err) {
      // The in-memory objects may already carry the change. An open file's object is the only copy
      // of what was written to it (size, times): keep it and mark it dirty so the next flush tries
      // again. Forget the others, so the next read reloads what the database really holds.
      for (const ino of tx.inodes.keys()) {
        if (this.isOpen(ino)) { this.dirty.add(ino); this.uncounted.add(ino) } else this.inodes.delete(ino)
      }
      for (const ino of tx.deletedInodes.keys()) this.inodes.delete(ino)
      for (const key of tx.dirents.keys()) {
        this.dirents.delete(key)
        this.known.forget(direntParent(key))
      }
      this.reportAttrs(tx, false) // what was answered from the changed objects meanwhile
      throw err
    }
    this.savedLocal += delta
    for (const [inode, local] of counts) {
      inode.counted = local
      // A write may have changed the size while the batch was written: then it stays uncounted.
      if (localBytes(inode) === local) this.uncounted.delete(inode.ino)
    }
    for (const inode of tx.inodes.values()) {
      if (!cold || this.inodes.peek(inode.ino) !== undefined) this.inodes.set(inode.ino, inode)
    }
    for (const ino of tx.deletedInodes.keys()) { this.inodes.delete(ino); this.dirty.delete(ino); this.uncounted.delete(ino) }
    for (const ino of tx.madeDirs) this.known.made(ino)
    for (const ino of tx.deletedDirs) this.known.forget(ino)
    for (const [key, dirent] of tx.dirents) {
      if (dirent === null) {
        this.dirents.delete(key)
        this.known.unlinked(direntParent(key), childName(key))
      } else {
        if (!cold || this.dirents.peek(key) !== undefined) this.dirents.set(key, dirent)
        this.known.linked(direntParent(key), childName(key))
      }
    }
    this.reportAttrs(tx, true)
  }

  /** After a failed commit, the directories it would have written are reported stale as well. */
  private reportAttrs (tx: Transaction, committed: boolean): void {
    if (this.attrsChanged === undefined) return
    const change: AttrsChange = { dirs: [], stale: [...tx.deletedInodes.keys()] }
    for (const inode of tx.inodes.values()) {
      if (committed && isDir(inode)) change.dirs.push(inode)
      else change.stale.push(inode.ino)
    }
    if (change.dirs.length > 0 || change.stale.length > 0) this.attrsChanged(change)
  }

  allocateIno (): number {
    return this.nextIno++
  }

  // ---- open files ----

  pin (ino: number): void {
    this.pins.add(ino)
  }

  /** Returns true when this was the last open reference. */
  unpin (ino: number): boolean {
    return this.pins.remove(ino)
  }

  isOpen (ino: number): boolean {
    return this.pins.has(ino)
  }

  /** The cached copy of an inode, if any (open files' inodes are pinned in the cache). */
  cached (ino: number): Inode | undefined {
    return this.inodes.get(ino)
  }

  /** The cached inode changed in memory (size, times of an open file): save it at the next flush. */
  markDirty (inode: Inode): void {
    this.dirty.add(inode.ino)
    this.uncounted.add(inode.ino)
  }

  // ---- local bytes ----

  /** Bytes of content held locally: what is saved, plus the unsaved changes of open files. */
  localBytes (): number {
    let n = this.savedLocal
    for (const ino of this.uncounted) {
      const inode = this.inodes.get(ino)
      if (inode === undefined) { this.uncounted.delete(ino); continue }
      n += localBytes(inode) - (inode.counted ?? 0)
    }
    return n
  }

  /** Grows with every commit: whoever saw no change since a number has nothing new to look at. */
  get commits (): number {
    return this.generation
  }

  /** False while inodes saved before local bytes were counted are still being counted. */
  get localBytesComplete (): boolean {
    return this.scanAfter === undefined
  }

  /**
   * Counts the local bytes of up to `limit` inode records saved before counting existed (re-saving
   * them does it); returns true when none is left. One transaction per step, the scan position in
   * the same batch, so a crash resumes where it stopped.
   */
  async countStep (limit = 1000): Promise<boolean> {
    if (this.scanAfter === undefined) return true
    return await this.mutate(async (tx) => {
      const after = this.scanAfter
      if (after === undefined) return true
      let last: string | undefined
      let n = 0
      for await (const [key, record] of this.store.entries<InodeRecord>({ ...inodeRange(after === '' ? undefined : after), limit })) {
        last = key
        n++
        if (record.local !== undefined) continue
        const ino = keyIno(key)
        const inode = this.inodes.get(ino) ?? decodeInode(ino, record)
        if (inode.counted === undefined) tx.putInode(inode)
      }
      const done = n < limit
      tx.extra.push(done ? { type: 'del', key: META_LOCAL_SCAN } : { type: 'put', key: META_LOCAL_SCAN, value: last })
      tx.afterCommit(() => { this.scanAfter = done ? undefined : last })
      return done
    })
  }

  /** Inodes with local content and the bytes their records count, in inode order, streamed. */
  async * localFiles (): AsyncGenerator<{ ino: number, bytes: number }> {
    for await (const [key, bytes] of this.store.entries<number>(localRange)) yield { ino: keyIno(key), bytes }
  }

  /** An inode as cached or saved, without caching it (scans must not push out the working set). */
  async peek (ino: number): Promise<Inode | undefined> {
    const cached = this.inodes.get(ino)
    if (cached !== undefined) return cached
    const record = await this.store.get<InodeRecord>(inodeKey(ino))
    return record === undefined ? undefined : decodeInode(ino, record)
  }

  /** Saves dirty inodes (all, or the given ones) in one batch. */
  async flush (inos?: number[], opts: { sync?: boolean } = {}): Promise<void> {
    const wanted = (inos ?? [...this.dirty]).filter((ino) => this.dirty.has(ino))
    if (wanted.length === 0 && opts.sync !== true) return
    await this.mutate(async (tx) => {
      for (const ino of wanted) {
        const inode = this.inodes.get(ino)
        if (inode !== undefined && inode.nlink > 0) tx.putInode(inode)
        else this.dirty.delete(ino)
      }
    }, opts)
  }

  /** Inodes imported from a listing whose objects' metadata is not read yet (inode.listedOnly), in order, streamed. */
  async * listedInodes (after?: number): AsyncGenerator<number> {
    const range = after === undefined ? listedRange : { ...listedRange, gt: listedKey(after) }
    for await (const key of this.store.keys(range)) yield keyIno(key)
  }

  /** Inodes unlinked while open when the daemon stopped: their content is garbage now. */
  async * orphans (): AsyncGenerator<number> {
    for await (const key of this.store.keys(orphanRange)) yield orphanIno(key)
  }
}

/** The writes of one namespace operation; committed by Namespace.mutate as one batch. */
export class Transaction {
  readonly inodes = new Map<number, Inode>()
  /** Deleted inode numbers, with the local bytes their records counted. */
  readonly deletedInodes = new Map<number, number>()
  /** Those of them that were directories. */
  readonly deletedDirs: number[] = []
  /** Directories this transaction makes. */
  readonly madeDirs: number[] = []
  readonly dirents = new Map<string, DirentRecord | null>()
  readonly extra: Op[] = []
  readonly afterCommitted: Array<() => void> = []
  allocated = false

  constructor (private readonly ns: Namespace) {}

  newInode (fields: Omit<Inode, 'ino' | 'atimeNs' | 'mtimeNs' | 'ctimeNs'>): Inode {
    const t = nowNs()
    const inode: Inode = { ino: this.ns.allocateIno(), atimeNs: t, mtimeNs: t, ctimeNs: t, ...fields }
    this.allocated = true
    this.inodes.set(inode.ino, inode)
    if (isDir(inode)) this.madeDirs.push(inode.ino)
    return inode
  }

  putInode (inode: Inode): void {
    this.inodes.set(inode.ino, inode)
  }

  deleteInode (inode: Inode): void {
    this.inodes.delete(inode.ino)
    this.deletedInodes.set(inode.ino, inode.counted ?? 0)
    if (isDir(inode)) this.deletedDirs.push(inode.ino)
    this.extra.push({ type: 'del', key: orphanKey(inode.ino) })
    if (inode.listedOnly !== undefined) this.extra.push({ type: 'del', key: listedKey(inode.ino) })
  }

  /** The inode's object metadata has been read: it is no longer listed-only. */
  settled (inode: Inode): void {
    if (inode.listedOnly === undefined) return
    delete inode.listedOnly
    this.putInode(inode)
    this.extra.push({ type: 'del', key: listedKey(inode.ino) })
  }

  /** Removes every xattr of a deleted inode. */
  async deleteXattrs (ino: number): Promise<void> {
    for (const name of await this.ns.listXattrs(ino)) this.extra.push({ type: 'del', key: xattrKey(ino, name) })
  }

  /** `type` overrides the child's file type bits: 0 is DT_UNKNOWN in readdir (a listed-only object). */
  link (parent: number, name: string, child: Inode, type = child.mode & S_IFMT): void {
    this.dirents.set(direntKey(parent, name), { ino: child.ino, type })
  }

  unlink (parent: number, name: string): void {
    this.dirents.set(direntKey(parent, name), null)
  }

  markOrphan (ino: number): void {
    this.extra.push({ type: 'put', key: orphanKey(ino), value: 1 })
  }

  /** Runs fn once the batch is committed (not at all if it fails): in-memory follow-ups of durable facts. */
  afterCommit (fn: () => void): void {
    this.afterCommitted.push(fn)
  }

  setXattr (ino: number, name: string, value: Buffer | null): void {
    const key = xattrKey(ino, name)
    this.extra.push(value === null ? { type: 'del', key } : { type: 'put', key, value: value.toString('base64') })
  }
}

