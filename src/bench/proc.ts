/**
 * Benchmark plumbing: child processes (every byte of file I/O the benchmark measures is done by a
 * child — dd, tar, grep, python3 — never by this process's event loop), timing, and a cleanup list
 * that runs on normal exit, on failure and on Ctrl-C / SIGTERM.
 */
import fs from 'node:fs'
import { spawn, type ChildProcess } from 'node:child_process'

/** Set once a stop signal arrived: no new child is started after that. */
export let aborted = false

export class AbortedError extends Error {
  constructor () { super('benchmark aborted') }
}

/** Children running now (dd, tar, python3…), killed and awaited before cleanup deletes anything. */
const active = new Set<ChildProcess>()

export interface RunResult { code: number, stdout: string, stderr: string, seconds: number }

function killGroup (child: ChildProcess, signal: NodeJS.Signals): void {
  try { process.kill(-(child.pid as number), signal) } catch { child.kill(signal) }
}

/**
 * Runs a program; never rejects. `seconds` is the wall time from spawn to exit. After a stop signal
 * only cleanup commands (`cleanup: true`) still run. The child gets its own process group, killed
 * whole (on timeout, in killActive): a `bash -c` leaves no dd or python3 behind writing into a
 * mount, and a Ctrl-C in the terminal reaches only the benchmark, which stops its children itself.
 */
export function run (file: string, args: string[], opts: { cwd?: string, env?: NodeJS.ProcessEnv, timeoutMs?: number, cleanup?: boolean } = {}): Promise<RunResult> {
  if (aborted && opts.cleanup !== true) return Promise.resolve({ code: 130, stdout: '', stderr: 'benchmark aborted', seconds: 0 })
  return new Promise((resolve) => {
    const start = process.hrtime.bigint()
    const child = spawn(file, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s })
    child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), opts.timeoutMs ?? 600_000)
    const done = (code: number, error = ''): void => {
      clearTimeout(timer)
      active.delete(child)
      resolve({ code, stdout, stderr: stderr + error, seconds: Number(process.hrtime.bigint() - start) / 1e9 })
    }
    child.once('error', (err) => done(127, String(err)))
    child.once('close', (code) => done(code ?? 1))
    active.add(child)
  })
}

/** SIGTERM to the process group of every running child, SIGKILL after 5 s; resolves once all exited. */
async function killActive (): Promise<void> {
  await Promise.all([...active].map((child) => new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) { resolve(); return }
    child.once('exit', () => resolve())
    killGroup(child, 'SIGTERM')
    setTimeout(() => killGroup(child, 'SIGKILL'), 5000).unref()
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

/**
 * On Ctrl-C, SIGTERM or SIGHUP: clean up, then exit 130/143/129; on an uncaught exception or
 * rejection: the same, exit 1 (Node's default would exit at once, leaving the daemons mounted).
 * A second signal is ignored.
 */
export function installSignalHandlers (): void {
  let stopping = false
  const stop = (why: string, code: number): void => {
    if (stopping) return
    stopping = true
    aborted = true
    process.stderr.write(`\n${why}: stopping the benchmark and cleaning up…\n`)
    cleanupAll().finally(() => process.exit(code))
  }
  const codes: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 }
  for (const signal of Object.keys(codes)) process.on(signal, () => stop(signal, codes[signal]))
  const crash = (err: unknown): void => stop(`uncaught ${(err as Error)?.stack ?? String(err)}`, 1)
  process.on('uncaughtException', crash)
  process.on('unhandledRejection', crash)
}

/** Mount points listed in /proc/mounts at or under dir. */
export async function mountsUnder (dir: string): Promise<string[]> {
  const text = await fs.promises.readFile('/proc/mounts', 'utf8')
  const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
  return text.split('\n').map((line) => unescape(line.split(' ')[1] ?? ''))
    .filter((mp) => mp === dir || mp.startsWith(dir + '/'))
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** How many times sections run per side, alternating (S3LINK_BENCH_REPEAT); the best is kept. */
export const REPEAT = Math.max(1, Number(process.env.S3LINK_BENCH_REPEAT ?? 2))

/** A string quoted for sh. */
export const q = (s: string): string => `'${s.replace(/'/g, "'\\''")}'`

export const count = (n: number): string => n.toLocaleString('en-US')
