/**
 * A size-bounded map that forgets what was not used for longest, approximately: two generations of
 * at most capacity/2 entries each. Entries are added to the young one; a hit in the old one moves
 * the entry to the young one; when the young one is full, the old one is dropped and the young one
 * becomes old. So the last capacity/2 distinct keys used are always kept, and never more than
 * `capacity` entries, plus those `keep(key)` vetoes (pinned or unsaved entries stay however full
 * the map is: they move to the young generation instead of being dropped).
 *
 * Not the textbook LRU (one Map, delete + set on every hit): on a Map of 20,000 entries that had
 * churned for a while, V8 took 7–37 µs per delete + set (1 µs on a fresh copy of the same Map), and
 * the cache was half the daemon's CPU time under `ls -l`. Here a hit in the young generation is
 * a plain get, and no Map sees a key deleted and added back.
 */
export class Lru<K, V> {
  private young = new Map<K, V>()
  private old = new Map<K, V>()
  private readonly half: number
  /** Kept entries carried into the young generation at its start: they do not count towards its half. */
  private carried = 0

  constructor (capacity: number, private readonly keep: (key: K, value: V) => boolean = () => false) {
    this.half = Math.max(1, Math.ceil(capacity / 2))
  }

  get size (): number { return this.young.size + this.old.size }

  get (key: K): V | undefined {
    const value = this.young.get(key)
    if (value !== undefined) return value
    const aged = this.old.get(key)
    if (aged !== undefined) {
      this.old.delete(key)
      this.add(key, aged)
    }
    return aged
  }

  /** The value without counting it as a use. */
  peek (key: K): V | undefined {
    return this.young.get(key) ?? this.old.get(key)
  }

  set (key: K, value: V): void {
    if (this.young.has(key)) {
      this.young.set(key, value)
      return
    }
    this.old.delete(key)
    this.add(key, value)
  }

  delete (key: K): void {
    this.young.delete(key)
    this.old.delete(key)
  }

  private add (key: K, value: V): void {
    this.young.set(key, value)
    if (this.young.size < this.half + this.carried) return
    const dropped = this.old
    this.old = this.young
    this.young = new Map()
    for (const [k, v] of dropped) if (this.keep(k, v)) this.young.set(k, v)
    this.carried = this.young.size
  }
}
