/**
 * Benchmark plumbing: child processes (every byte of file I/O the benchmark measures is done by a
 * child — dd, tar, grep, python3 — never by this process's event loop), timing, and a cleanup list
 * that runs on normal exit, on failure and on Ctrl-C / SIGTERM.
 */
import fs from 'node:fs'
import { execFile, type ChildProcess } from 'node:child_process'

/** Set once a stop signal arrived: no new child is started after that. */
export let aborted = false

export class AbortedError extends Error {
  constructor () { super('benchmark aborted') }
}

/** Children running now (dd, tar, python3…), killed and awaited before cleanup deletes anything. */
const active = new Set<ChildProcess>()

export interface RunResult { code: number, stdout: string, stderr: string, seconds: number }

/**
 * Runs a program; never rejects. `seconds` is the wall time from spawn to exit. After a stop signal
 * only cleanup commands (`cleanup: true`) still run.
 */
export function run (file: string, args: string[], opts: { cwd?: string, env?: NodeJS.ProcessEnv, timeoutMs?: number, cleanup?: boolean } = {}): Promise<RunResult> {
  if (aborted && opts.cleanup !== true) return Promise.resolve({ code: 130, stdout: '', stderr: 'benchmark aborted', seconds: 0 })
  return new Promise((resolve) => {
    const start = process.hrtime.bigint()
    const child = execFile(file, args, {
      cwd: opts.cwd, env: opts.env ?? process.env, maxBuffer: 256 << 20, timeout: opts.timeoutMs ?? 600_000, encoding: 'utf8'
    }, (err, stdout, stderr) => {
      active.delete(child)
      const seconds = Number(process.hrtime.bigint() - start) / 1e9
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1
      resolve({ code, stdout, stderr, seconds })
    })
    active.add(child)
  })
}

async function killActive (): Promise<void> {
  await Promise.all([...active].map((child) => new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) { resolve(); return }
    child.once('exit', () => resolve())
    child.kill('SIGTERM')
    setTimeout(() => child.kill('SIGKILL'), 5000).unref()
  })))
}

/** bash -c COMMAND; throws (with its stderr) when it exits non-zero. */
export async function sh (command: string, opts: { cwd?: string, timeoutMs?: number } = {}): Promise<RunResult> {
  const r = await run('bash', ['-c', command], opts)
  if (aborted) throw new AbortedError()
  if (r.code !== 0) throw new Error(`command failed (exit ${r.code}): ${command}\n${r.stderr.trim()}`)
  return r
}

// ---- cleanup ----

type CleanupFn = () => Promise<void> | void
const cleanups: CleanupFn[] = []
let cleaning: Promise<void> | undefined

/** Registers fn to run at cleanup (last registered runs first); returns a function that unregisters it. */
export function onCleanup (fn: CleanupFn): () => void {
  cleanups.push(fn)
  return () => {
    const i = cleanups.indexOf(fn)
    if (i >= 0) cleanups.splice(i, 1)
  }
}

/** Runs every registered cleanup once, in reverse order, each even when an earlier one failed. */
export function cleanupAll (): Promise<void> {
  cleaning ??= (async () => {
    await killActive()
    while (cleanups.length > 0) {
      const fn = cleanups.pop() as CleanupFn
      try { await fn() } catch (err) { process.stderr.write(`cleanup step failed: ${String(err)}\n`) }
    }
  })()
  return cleaning
}

/** On Ctrl-C, SIGTERM or SIGHUP: clean up, then exit 130/143/129. A second signal is ignored. */
export function installSignalHandlers (): void {
  const codes: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 }
  let stopping = false
  for (const signal of Object.keys(codes)) {
    process.on(signal, () => {
      if (stopping) return
      stopping = true
      aborted = true
      process.stderr.write(`\n${signal}: stopping the benchmark and cleaning up…\n`)
      cleanupAll().finally(() => process.exit(codes[signal]))
    })
  }
}

/** Mount points listed in /proc/mounts at or under dir. */
export async function mountsUnder (dir: string): Promise<string[]> {
  const text = await fs.promises.readFile('/proc/mounts', 'utf8')
  const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
  return text.split('\n').map((line) => unescape(line.split(' ')[1] ?? ''))
    .filter((mp) => mp === dir || mp.startsWith(dir + '/'))
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
