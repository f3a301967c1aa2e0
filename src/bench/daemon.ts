/**
 * One s3link file system for the benchmark: `s3link init` into a directory of the benchmark's temp
 * root, then `s3link mount` as a child process (the same way the tests start it: a pipe as fd 3
 * with S3LINK_READY_FD=3, "ready" once mounted). `bin/s3link` is the daemon process itself, so the
 * child's pid is the one whose memory is measured.
 */
import fs from 'node:fs'
import path from 'node:path'
import readline from 'node:readline'
import { spawn, type ChildProcess } from 'node:child_process'
import YAML from 'yaml'
import * as proc from './proc'
import { run, mountsUnder, onCleanup, AbortedError, type RunResult } from './proc'

export const REPO = path.resolve(__dirname, '../..')
export const CLI = path.join(REPO, 'bin/s3link')

export interface Memory { rssKiB: number, hwmKiB: number, anonKiB: number, fileKiB: number, threads: number }

export class BenchFs {
  daemon?: ChildProcess
  private readonly unregister: () => void
  private stopping?: Promise<number | null>
  private destroying?: Promise<void>

  constructor (readonly dir: string, readonly name: string) {
    this.unregister = onCleanup(() => this.destroy())
  }

  get mountpoint (): string { return path.join(this.dir, 'mnt') }
  get stateDir (): string { return path.join(this.dir, 'state') }
  get configPath (): string { return path.join(this.dir, `${this.name}.yaml`) }
  get logPath (): string { return path.join(this.dir, 'daemon.log') }
  get pid (): number {
    if (this.daemon?.pid === undefined) throw new Error(`file system ${this.name} is not mounted`)
    return this.daemon.pid
  }

  p (...parts: string[]): string { return path.join(this.mountpoint, ...parts) }

  async init (): Promise<void> {
    await fs.promises.mkdir(this.dir, { recursive: true })
    const r = await run(process.execPath, [CLI, 'init', this.name, '--mountpoint', this.mountpoint,
      '--state-dir', this.stateDir, '--config', this.configPath])
    if (r.code !== 0) throw new Error(`s3link init ${this.name} failed: ${r.stderr.trim()}`)
  }

  /** Changes settings in the config file (read at the next mount). */
  async configure (settings: Record<string, unknown>): Promise<void> {
    const config = YAML.parse(await fs.promises.readFile(this.configPath, 'utf8')) as Record<string, unknown>
    await fs.promises.writeFile(this.configPath, YAML.stringify({ ...config, ...settings }))
  }

  /** `s3link ARGS --config CONFIG` (bucket, dra, task… talk to this daemon); throws unless it exits 0. */
  async cli (args: string[], timeoutMs = 600_000): Promise<RunResult> {
    const r = await run(process.execPath, [CLI, ...args, '--config', this.configPath], { timeoutMs })
    if (proc.aborted) throw new AbortedError()
    if (r.code !== 0) throw new Error(`s3link ${args.join(' ')} failed (exit ${r.code}): ${(r.stderr.trim() || r.stdout.trim()).split('\n').slice(0, 5).join(' ')}`)
    return r
  }

  /**
   * Whether the CLI has this subcommand, e.g. ['task', 'import'] (features land over time; the
   * benchmark adapts). An unknown one prints the parent's help, also with exit code 0.
   */
  async hasCommand (words: string[]): Promise<boolean> {
    const r = await run(process.execPath, [CLI, ...words, '--help'])
    return r.code === 0 && r.stdout.startsWith(`Usage: s3link ${words.join(' ')} `)
  }

  /**
   * Starts the daemon and resolves with the seconds from spawn to its "ready" line. `nodeArgs` go to
   * node before the script (e.g. --cpu-prof, which NODE_OPTIONS does not accept).
   */
  async mount (nodeArgs: string[] = [], timeoutMs = 120_000): Promise<number> {
    if (proc.aborted) throw new AbortedError()
    const log = fs.openSync(this.logPath, 'a')
    const start = process.hrtime.bigint()
    const child = spawn(process.execPath, [...nodeArgs, CLI, 'mount', this.name, '--config', this.configPath], {
      stdio: ['ignore', log, log, 'pipe'],
      // Its own process group: a Ctrl-C in the terminal reaches the benchmark, which stops the
      // daemon with one SIGTERM (a daemon hit by SIGINT and then SIGTERM would die mid-unmount).
      detached: true,
      env: { ...process.env, S3LINK_READY_FD: '3' }
    })
    fs.closeSync(log)
    this.daemon = child
    try {
      await new Promise<void>((resolve, reject) => {
        const lines = readline.createInterface({ input: child.stdio[3] as NodeJS.ReadableStream })
        const timer = setTimeout(() => reject(new Error(`daemon not ready after ${timeoutMs} ms:\n${this.logTail()}`)), timeoutMs)
        lines.once('line', () => { clearTimeout(timer); lines.close(); resolve() })
        child.once('exit', (code, signal) => {
          clearTimeout(timer)
          reject(new Error(`daemon exited (${code ?? signal}) before mounting:\n${this.logTail()}`))
        })
        child.once('error', (err) => { clearTimeout(timer); reject(err) })
      })
    } catch (err) {
      await this.stop()
      throw err
    }
    return Number(process.hrtime.bigint() - start) / 1e9
  }

  logTail (lines = 20): string {
    try { return fs.readFileSync(this.logPath, 'utf8').trim().split('\n').slice(-lines).join('\n') } catch { return '' }
  }

  /** VmRSS and VmHWM of the daemon process. */
  async memory (): Promise<Memory> {
    const status = await fs.promises.readFile(`/proc/${this.pid}/status`, 'utf8')
    const field = (name: string): number => Number(/^[\w]+:\s+(\d+)/.exec(status.split('\n').find((l) => l.startsWith(name + ':')) ?? '')?.[1] ?? NaN)
    return { rssKiB: field('VmRSS'), hwmKiB: field('VmHWM'), anonKiB: field('RssAnon'), fileKiB: field('RssFile'), threads: field('Threads') }
  }

  /** CPU seconds (user + system, all threads) the daemon has used so far. */
  async cpuSeconds (): Promise<number> {
    const stat = await fs.promises.readFile(`/proc/${this.pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100 // utime, stime (fields 14, 15 of stat(5)), in clock ticks
  }

  /**
   * SIGTERM (the daemon drains its export queue for up to 10 s, unmounts and exits), SIGKILL after
   * 30 s, or after 5 s once the benchmark is aborted; then no mount may be left. Callers at the same
   * time (the cleanup list and the section's own `finally`) share one stop.
   */
  stop (): Promise<number | null> {
    this.stopping ??= this.stopNow().finally(() => { this.stopping = undefined })
    return this.stopping
  }

  private async stopNow (): Promise<number | null> {
    const child = this.daemon
    let code: number | null = null
    if (child !== undefined) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), proc.aborted ? 5000 : 30_000)
        code = await exited
        clearTimeout(timer)
      } else {
        code = child.exitCode
      }
    }
    this.daemon = undefined
    if ((await mountsUnder(this.mountpoint)).length > 0) await run('fusermount', ['-uz', this.mountpoint], { cleanup: true })
    return code
  }

  /** Stops the daemon and deletes everything of this file system (never through a live mount). */
  destroy (): Promise<void> {
    this.destroying ??= this.destroyNow()
    return this.destroying
  }

  private async destroyNow (): Promise<void> {
    this.unregister()
    await this.stop()
    const keep = process.env.S3LINK_BENCH_KEEP_LOGS
    if (keep !== undefined && fs.existsSync(this.logPath)) {
      await fs.promises.mkdir(keep, { recursive: true })
      await fs.promises.copyFile(this.logPath, path.join(keep, `${this.name}-${process.pid}.log`))
    }
    const left = await mountsUnder(this.dir)
    if (left.length > 0) throw new Error(`not deleting ${this.dir}: still mounted at ${left.join(', ')}`)
    await fs.promises.rm(this.dir, { recursive: true, force: true, maxRetries: 3 })
  }
}
