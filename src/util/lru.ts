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
    if (this.map.size > this.capacity) this.evict()
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
