/**
 * File system path ↔ S3 key for one DRA (spec/fsx-dra.md §13.2, §29.1): for a DRA linking `P` to
 * `s3://B/K/`, the entry `P/x/y` is the key `K/x/y`, the directory `P/x` the marker `K/x/`.
 * Keys that cannot be POSIX names are refused with FSx's event code.
 */
const NAME_MAX = 255

export const NOT_POSIX = 'S3ImportObjectPathNotPosixCompliant'

export interface KeyPath {
  /** Components below the DRA's directory (empty for the prefix's own marker). */
  components: string[]
  /** The key names a directory marker (`…/`). */
  directory: boolean
}

/** Why a key below `prefix` cannot be an entry, or its components. */
export function keyToPath (prefix: string, key: string): KeyPath | { problem: string } {
  if (!key.startsWith(prefix)) return { problem: `key is outside the prefix ${prefix}` }
  const rel = key.slice(prefix.length)
  const directory = rel.endsWith('/')
  const inner = directory ? rel.slice(0, -1) : rel
  if (inner === '') return directory ? { problem: 'key has an empty component' } : { components: [], directory: true }
  const components = inner.split('/')
  for (const c of components) {
    if (c === '') return { problem: 'key has an empty component (//)' }
    if (c === '.' || c === '..') return { problem: `key has a ${c} component` }
    if (Buffer.byteLength(c) > NAME_MAX) return { problem: `a key component is longer than ${NAME_MAX} bytes` }
    if (c.includes('\0')) return { problem: 'key contains a NUL character' }
    if (c.includes('\uFFFD')) return { problem: 'key is not valid UTF-8' }
  }
  return { components, directory }
}

/** The key of an entry given by its components below the DRA's directory. */
export function pathToKey (prefix: string, components: string[], directory: boolean): string {
  const rel = components.join('/')
  return prefix + rel + (directory && rel !== '' ? '/' : '')
}
