/**
 * Directories whose every name is known in memory: those made since the daemon started (empty
 * then), kept up to date by every namespace commit, the only writer of directory entries. A
 * lookup of a name such a directory lacks needs no database read: the kernel looks up every new
 * name before it creates it, and that read was a fifth of a small file's create-write-close.
 *
 * Bounded: at most `maxEntries` entries in all, each directory and each name counting one (an
 * import that makes a million empty directories must not hold a million sets); the directory that
 * went longest without a new name is forgotten first (its lookups read the database again, as for
 * any other directory).
 */
export class KnownDirs {
  /** In order of their last new name, oldest first. */
  private readonly dirs = new Map<number, Set<string>>()
  private youngest?: number
  /** Directories and names held. */
  private entries = 0

  constructor (private readonly maxEntries = 20_000) {}

  /** false: the directory certainly has no such name; true: it has, or it is not known here. */
  mayHave (dir: number, name: string): boolean {
    const names = this.dirs.get(dir)
    return names === undefined || names.has(name)
  }

  /** A directory just made: empty. */
  made (dir: number): void {
    this.forget(dir)
    this.dirs.set(dir, new Set())
    this.youngest = dir
    this.entries++
    this.evict()
  }

  linked (dir: number, name: string): void {
    const names = this.dirs.get(dir)
    if (names === undefined || names.has(name)) return
    names.add(name)
    this.entries++
    if (this.youngest !== dir) { // to the young end (a Map keeps insertion order)
      this.dirs.delete(dir)
      this.dirs.set(dir, names)
      this.youngest = dir
    }
    this.evict()
  }

  unlinked (dir: number, name: string): void {
    if (this.dirs.get(dir)?.delete(name) === true) this.entries--
  }

  /** Its names are not known any more (the directory is gone, or a commit of its names failed). */
  forget (dir: number): void {
    const names = this.dirs.get(dir)
    if (names === undefined) return
    this.entries -= names.size + 1
    this.dirs.delete(dir)
    if (this.youngest === dir) this.youngest = undefined
  }

  private evict (): void {
    while (this.entries > this.maxEntries) this.forget(this.dirs.keys().next().value as number)
  }
}
