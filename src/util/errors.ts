/**
 * Typed errors with a stable code. A FsError carries the POSIX errno the FUSE adapter replies
 * with; any other error reaching the adapter is a bug or an I/O failure and becomes EIO (logged).
 */
import { constants } from 'node:os'

export type Errno = keyof typeof constants.errno

export class FsError extends Error {
  readonly errno: number

  constructor (readonly code: Errno, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options)
    this.errno = constants.errno[code]
  }
}

export const fsError = (code: Errno, message: string): FsError => new FsError(code, message)

/**
 * The value, or undefined when what it looks up is gone (ENOENT, ENOTDIR: removed meanwhile). Any
 * other failure (a database or disk error) is thrown: it is not the same as "nothing there".
 */
export async function unlessGone<T> (lookup: Promise<T>): Promise<T | undefined> {
  try {
    return await lookup
  } catch (err) {
    if (err instanceof FsError && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) return undefined
    throw err
  }
}

/** The negative errno to hand to the kernel for any thrown value. */
export function errnoOf (err: unknown): number {
  if (err instanceof FsError) return -err.errno
  const code = (err as { code?: unknown } | null)?.code
  // Errors from node:fs on content files (ENOSPC, EDQUOT, EIO…) keep their meaning.
  if (typeof code === 'string' && code in constants.errno) return -constants.errno[code as Errno]
  return -constants.errno.EIO
}

/** A user-facing error of the CLI or the daemon's start-up: printed as is, exit code 1. */
export class UsageError extends Error {
  readonly code = 'USAGE'
}
