/**
 * Checks a mountpoint before mounting: it must be a directory nobody else has mounted on. A FUSE
 * mount left behind by a crashed daemon answers every call with ENOTCONN ("Transport endpoint is
 * not connected"): that one is ours to clean up, with a lazy unmount.
 */
import fs from 'node:fs'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { UsageError } from '../util/errors'

const run = promisify(execFile)

/** Mount points listed in /proc/mounts (octal escapes such as \040 decoded). */
export async function mountPoints (): Promise<Map<string, string>> {
  const text = await fs.promises.readFile('/proc/mounts', 'utf8')
  const points = new Map<string, string>()
  for (const line of text.split('\n')) {
    const [, point, type] = line.split(' ')
    if (point !== undefined) points.set(point.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))), type)
  }
  return points
}

export async function isMounted (mountpoint: string): Promise<boolean> {
  return (await mountPoints()).has(mountpoint)
}

/** Returns 'stale-cleaned' when a dead FUSE mount had to be removed first. */
export async function prepareMountpoint (mountpoint: string): Promise<'ok' | 'stale-cleaned'> {
  let outcome: 'ok' | 'stale-cleaned' = 'ok'
  try {
    const st = await fs.promises.stat(mountpoint)
    if (!st.isDirectory()) throw new UsageError(`mountpoint ${mountpoint} is not a directory`)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new UsageError(`mountpoint ${mountpoint} does not exist`)
    if (code !== 'ENOTCONN') throw err
    await run('fusermount', ['-uz', mountpoint])
    outcome = 'stale-cleaned'
  }
  if (await isMounted(mountpoint)) {
    throw new UsageError(`mountpoint ${mountpoint} is busy: something is already mounted there (unmount it first)`)
  }
  return outcome
}

/** Unmounts, waiting for busy files to be closed for a while before detaching lazily. */
export async function unmount (mountpoint: string, tries = 10): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (!await isMounted(mountpoint)) return
    try {
      await run('fusermount', ['-u', mountpoint])
      return
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
  if (await isMounted(mountpoint)) await run('fusermount', ['-uz', mountpoint])
}
