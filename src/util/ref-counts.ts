/** How many holders each key has (open handles, writers, uploads); a key with none is not kept. */
export class RefCounts<K> {
  private readonly counts = new Map<K, number>()

  add (key: K): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1)
  }

  /** One holder fewer; true when that was the last. */
  remove (key: K): boolean {
    const left = (this.counts.get(key) ?? 1) - 1
    if (left > 0) { this.counts.set(key, left); return false }
    this.counts.delete(key)
    return true
  }

  has (key: K): boolean {
    return this.counts.has(key)
  }
}
