/**
 * Typed wrapper around our N-API FUSE binding (native/fuse/s3link_fuse.c).
 *
 * The addon calls `dispatch(op, req, ...args, caller)` on the event loop for every kernel request
 * and waits (on a libfuse thread) until `addon.reply(req, errno, value)` is called. This module
 * turns that into calls of the typed FuseOps handlers and guarantees exactly one reply per request:
 * a handler that throws, replies with a non-number errno, or is missing gets -EIO / -ENOSYS, and
 * a request still unanswered after `timeoutMs` gets -ETIMEDOUT (its late reply is then ignored).
 */
import path from 'node:path'
import fs from 'node:fs'
import os from 'node:os'
import { execFile } from 'node:child_process'
import type { Attr, FuseOps, MountOptions } from './ops'

export interface FuseMount {
  readonly mountpoint: string
  /** `fusermount -u` (retried while busy, then lazy `-uz`), then stops the libfuse loop. Idempotent. */
  unmount(): Promise<void>
  /**
   * From now on the binding writes what the kernel sends on open file `fh` into `fd` itself, on the
   * libfuse thread, and tells `ops.wrote` afterwards; fd -1 hands writes back to `ops.write`.
   * `fd` must stay open until `fh` is released. False if `fh` is not open.
   */
  directWrites(fh: number, fd: number): boolean
  /**
   * Reads on open file `fh` from `fd`: `size` ≥ 0 says the whole file is local and that long, so
   * reads within it never reach `ops.read`; -1 (the file is loading) still asks `ops.read`, with
   * a byte count in place of the buffer: it answers how many bytes to read from `fd`. fd -1: off.
   */
  directReads(fh: number, fd: number, size: number): boolean
  /**
   * The binding answers GETATTR of a directory, or of a file with one link that is not open, from
   * its own copy for up to a second; these inodes (by number; null: all) changed, so their copies
   * are dropped now.
   */
  forgetAttrs(inos: number[] | null): void
  /** These directories changed and are now so (matched by `ino`): the binding's copies take them. */
  updateDirs(attrs: Attr[]): void
  /**
   * A backing id for the file open as `fd` (> 0), or -errno where the kernel cannot pass reads
   * and writes through (before Linux 6.9, without CAP_SYS_ADMIN, a stacked file system). An open
   * answered with `{ fh, backing }` is then served by the kernel from that file: no read, write or
   * flush of its bytes reaches `ops` (see "Passthrough" in the binding for the kernel's rules).
   */
  openBacking(fd: number): number
  /** Drops a backing id (the kernel keeps the file while opens use it): 0 or -errno. */
  closeBacking(id: number): number
}

type Dispatch = (op: string, req: object, ...args: unknown[]) => void

interface Addon {
  mount(mountpoint: string, options: string, dispatch: Dispatch): object
  unmount(handle: object): Promise<void>
  /** Returns false when the request was already answered. Throws only if `req` is not a request. */
  reply(req: object, errno: number, value?: unknown): boolean
  notify(state: string): boolean
  directWrites(handle: object, fh: number, fd: number): boolean
  directReads(handle: object, fh: number, fd: number, size: number): boolean
  forgetAttrs(handle: object, inos: number[] | null): void
  updateDirs(handle: object, attrs: Attr[]): void
  openBacking(handle: object, fd: number): number
  closeBacking(handle: object, id: number): number
}

export const ADDON_PATH = path.join(__dirname, '../../native/build/s3link_fuse.node')

let addon: Addon | undefined
function load(): Addon {
  if (addon === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      addon = require(ADDON_PATH) as Addon
    } catch (err) {
      const e = new Error(`cannot load the FUSE binding ${ADDON_PATH} (run \`make native\`): ${(err as Error).message}`)
      ;(e as Error & { cause?: unknown }).cause = err
      throw e
    }
  }
  return addon
}

const E = os.constants.errno
const EIO = -E.EIO
const ENOSYS = -E.ENOSYS
const ETIMEDOUT = -E.ETIMEDOUT

/** libfuse splits `-o` on commas and unescapes backslashes. */
function escapeOption(o: string): string {
  return o.replace(/\\/g, '\\\\').replace(/,/g, '\\,')
}

function warn(message: string, err?: unknown): void {
  const detail = err instanceof Error ? `: ${err.stack ?? err.message}` : err !== undefined ? `: ${String(err)}` : ''
  process.emitWarning(message + detail, 'S3linkFuseWarning')
}

function validErrno(errno: unknown): errno is number {
  return typeof errno === 'number' && Number.isInteger(errno) && errno <= 0 && errno >= -4095
}

function makeDispatch(a: Addon, ops: FuseOps, timeoutMs: number): Dispatch {
  const table = ops as unknown as Record<string, ((...args: unknown[]) => void) | undefined>
  const useTimer = Number.isFinite(timeoutMs) && timeoutMs > 0
  const delay = Math.min(Math.max(1, Math.floor(timeoutMs)), 2 ** 31 - 1)

  return function dispatch (op: string, req: object, ...rest: unknown[]): void {
    if (op === 'wrote') { // a note of direct writes, not a request: nothing to answer
      try {
        ops.wrote?.(...(rest as [number, number, bigint, number]))
      } catch (err) {
        warn('fuse wrote: handler threw', err)
      }
      return
    }
    let done = false
    let timer: NodeJS.Timeout | undefined

    const answer = (errno: number, value?: unknown): void => {
      done = true
      if (timer !== undefined) clearTimeout(timer)
      try {
        a.reply(req, errno, value)
      } catch (err) {
        warn(`fuse ${op}: reply failed`, err)
      }
    }

    const reply = (errno: unknown, value?: unknown): void => {
      if (done) return // late (after a timeout) or second reply
      if (!validErrno(errno)) {
        warn(`fuse ${op}: handler replied with an invalid errno ${String(errno)}`)
        answer(EIO)
        return
      }
      answer(errno, errno === 0 ? value : undefined)
    }

    const handler = table[op]
    if (typeof handler !== 'function') {
      answer(ENOSYS)
      return
    }
    if (useTimer) {
      timer = setTimeout(() => {
        if (done) return
        warn(`fuse ${op}: no reply after ${timeoutMs} ms, answered ETIMEDOUT`)
        answer(ETIMEDOUT)
      }, delay)
      timer.unref()
    }
    try {
      // rest = [...args, caller]; handlers take (...args, caller, reply)
      handler.call(ops, ...rest, reply)
    } catch (err) {
      if (!done) {
        warn(`fuse ${op}: handler threw`, err)
        answer(EIO)
      } else {
        warn(`fuse ${op}: handler threw after replying`, err)
      }
    }
  }
}

function execFileAsync(file: string, args: string[]): Promise<{ ok: boolean, stderr: string, notFound: boolean }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 30_000, encoding: 'utf8' }, (err, _stdout, stderr) => {
      const notFound = err !== null && (err as NodeJS.ErrnoException).code === 'ENOENT'
      resolve({ ok: err === null, stderr: String(stderr ?? ''), notFound })
    })
  })
}

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-3][0-7]{2})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)))
}

/** The device ("major:minor") of the FUSE file system mounted at `mountpoint`, if one is. */
async function fuseDevice(mountpoint: string): Promise<string | undefined> {
  const info = await fs.promises.readFile('/proc/self/mountinfo', 'utf8')
  let found: string | undefined
  for (const line of info.split('\n')) {
    const sep = line.indexOf(' - ')
    if (sep < 0) continue
    const fields = line.slice(0, sep).split(' ')
    const fstype = line.slice(sep + 3).split(' ')[0]
    if (fstype.startsWith('fuse') && unescapeMountinfo(fields[4] ?? '') === mountpoint) found = fields[2] // the last mount wins
  }
  return found
}

/** Whether a FUSE file system is mounted at `mountpoint` (an absolute, canonical path). */
export async function isFuseMounted(mountpoint: string): Promise<boolean> {
  return await fuseDevice(mountpoint) !== undefined
}

/**
 * Sets the mount's readahead. Only root may; anyone else keeps the kernel's (a warning says so).
 * The kernel then asks for the next chunks of a file while the application reads the current one.
 */
async function setReadAhead(mountpoint: string, kib: number): Promise<void> {
  // The kernel applies libfuse's answer to its INIT (at most 128 KiB) when that answer comes: wait
  // for it, by a first request to ourselves (served on this event loop), and set ours after.
  await fs.promises.stat(mountpoint).catch(() => undefined)
  const dev = await fuseDevice(mountpoint)
  if (dev === undefined || !/^\d+:\d+$/.test(dev)) return
  try {
    await fs.promises.writeFile(`/sys/class/bdi/${dev}/read_ahead_kb`, `${kib}\n`)
  } catch (err) {
    warn(`cannot set the readahead of ${mountpoint} to ${kib} KiB (it stays the kernel's)`, (err as Error).message)
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Mounts `ops` at `mountpoint`. The returned promise resolves once the kernel mount exists; requests
 * are served on the event loop from then on. The process stays alive while mounted.
 */
export async function mountFuse(mountpoint: string, ops: FuseOps, opts: MountOptions): Promise<FuseMount> {
  const a = load()
  const st = await fs.promises.stat(mountpoint) // ENOENT, ENOTCONN (a stale mount) come out here, readable
  if (!st.isDirectory()) throw Object.assign(new Error(`mount: ${mountpoint} is not a directory`), { code: 'ENOTDIR' })
  const mnt = await fs.promises.realpath(mountpoint)
  for (const o of opts.options) {
    if (typeof o !== 'string' || o.length === 0) throw new TypeError(`mount: bad option ${JSON.stringify(o)}`)
  }
  // hard_remove is what handlers see in any case, but libfuse's own hard_remove makes fstat(2) of an
  // unlinked open file fail (ENOENT): the binding emulates it on top of libfuse's hiding instead.
  const options = opts.options.filter((o) => o !== 'hard_remove')
  const handle = a.mount(mnt, options.map(escapeOption).join(','), makeDispatch(a, ops, opts.timeoutMs))
  if (opts.readAheadKiB !== undefined && opts.readAheadKiB > 0) await setReadAhead(mnt, opts.readAheadKiB)

  let unmounting: Promise<void> | undefined
  const unmount = async (): Promise<void> => {
    const tries = 5
    for (let i = 0; i < tries; i++) {
      if (!(await isFuseMounted(mnt))) break
      const r = await execFileAsync('fusermount', ['-u', '--', mnt])
      if (r.ok || r.notFound) break
      if (!/busy/i.test(r.stderr)) break // not ours to fix here; the native unmount detaches it
      if (i === tries - 1) {
        warn(`fusermount -u ${mnt}: still busy, unmounting lazily`)
        await execFileAsync('fusermount', ['-u', '-z', '--', mnt])
      } else {
        await sleep(100 * (i + 1))
      }
    }
    // Stops the loop; detaches the mount itself if it is still attached (e.g. no fusermount).
    await a.unmount(handle)
  }

  return {
    mountpoint: mnt,
    unmount (): Promise<void> {
      unmounting ??= unmount()
      return unmounting
    },
    directWrites: (fh, fd) => a.directWrites(handle, fh, fd),
    directReads: (fh, fd, size) => a.directReads(handle, fh, fd, size),
    forgetAttrs: (inos) => { a.forgetAttrs(handle, inos) },
    updateDirs: (attrs) => { a.updateDirs(handle, attrs) },
    openBacking: (fd) => a.openBacking(handle, fd),
    closeBacking: (id) => a.closeBacking(handle, id)
  }
}

/**
 * Sends `state` (e.g. "READY=1", "STOPPING=1", "STATUS=...") to systemd's $NOTIFY_SOCKET.
 * Returns false when NOTIFY_SOCKET is unset; throws when it is set but the datagram cannot be sent.
 */
export function sdNotify(state: string): boolean {
  return load().notify(state)
}

