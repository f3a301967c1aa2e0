/**
 * A size-bounded map that forgets the least recently used entries first. `keep(key)` may veto an
 * eviction (pinned or unsaved entries stay however full the map is).
 */
export class Lru<K, V> {
  private readonly map = new Map<K, V>()

  constructor (private readonly capacity: number, private readonly keep: (key: K, value: V) => boolean = () => false) {}

  get size (): number { return this.map.size }

  get (key: K): V | undefined {
    const value = this.map.get(key)
    if (value !== undefined) {
      this.map.delete(key)
      this.map.set(key, value)
    }
    return value
  }

  set (key: K, value: V): void {
    this.map.delete(key)
    this.map.set(key, value)
    // Evict in batches: each pass walks the Map from its oldest end, so one eviction per insert
    // would make every insert into a full cache cost a walk (measured: 11-16 µs at 100k entries).
    if (this.map.size > this.capacity * 1.05 + 1) this.evict()
  }

  delete (key: K): void {
    this.map.delete(key)
  }

  private evict (): void {
    let excess = this.map.size - this.capacity
    for (const [key, value] of this.map) {
      if (excess <= 0) break
      if (this.keep(key, value)) continue
      this.map.delete(key)
      excess--
    }
  }
}
