/**
 * The benchmark's S3 server: the embedded one (s3rver underneath, src/repo/embedded-s3.ts) as a
 * child process with its data under the benchmark's temp root, so the raw S3 figures and the
 * daemon's talk to the very same server in the same run. Stopped by the cleanup list whatever happens.
 */
import fs from 'node:fs'
import path from 'node:path'
import readline from 'node:readline'
import { spawn, type ChildProcess } from 'node:child_process'
import * as proc from './proc'
import { onCleanup, run, sleep, AbortedError } from './proc'
import type { S3ToolRequest } from './s3tool'

const MAIN = path.join(__dirname, '../repo/embedded-s3-main.js')
const TOOL = path.join(__dirname, 's3tool.js')

export class BenchS3 {
  endpoint = ''
  private child?: ChildProcess
  private readonly unregister: () => void
  private stopping?: Promise<void>

  constructor (readonly dir: string, readonly bucket: string) {
    this.unregister = onCleanup(() => this.stop())
  }

  get pid (): number {
    if (this.child?.pid === undefined) throw new Error('the S3 server is not running')
    return this.child.pid
  }

  get logPath (): string { return path.join(this.dir, 's3.log') }

  async start (timeoutMs = 30_000): Promise<void> {
    if (proc.aborted) throw new AbortedError()
    await fs.promises.mkdir(path.join(this.dir, 'data'), { recursive: true })
    const log = fs.openSync(this.logPath, 'a')
    const child = spawn(process.execPath, [MAIN, '--directory', path.join(this.dir, 'data'), '--port', '0', '--bucket', this.bucket], {
      stdio: ['ignore', 'pipe', log],
      detached: true // its own process group, as the daemons: a Ctrl-C reaches only the benchmark
    })
    fs.closeSync(log)
    this.child = child
    try {
      this.endpoint = await new Promise<string>((resolve, reject) => {
        const lines = readline.createInterface({ input: child.stdout as NodeJS.ReadableStream })
        const timer = setTimeout(() => reject(new Error(`S3 server not listening after ${timeoutMs} ms`)), timeoutMs)
        lines.once('line', (line) => {
          clearTimeout(timer)
          lines.close()
          try { resolve((JSON.parse(line) as { endpoint: string }).endpoint) } catch { reject(new Error(`S3 server said: ${line}`)) }
        })
        child.once('exit', (code, signal) => {
          clearTimeout(timer)
          reject(new Error(`S3 server exited (${code ?? signal}): ${this.logTail()}`))
        })
      })
    } catch (err) {
      await this.stop()
      throw err
    }
  }

  logTail (): string {
    try { return fs.readFileSync(this.logPath, 'utf8').trim().split('\n').slice(-10).join('\n') } catch { return '' }
  }

  /** Runs one s3tool operation against this server (a child process) and returns its JSON. */
  async tool<T> (op: S3ToolRequest, timeoutMs = 3_600_000): Promise<T> {
    const r = await run(process.execPath, [TOOL, JSON.stringify({ ...op, endpoint: this.endpoint, bucket: this.bucket })], { timeoutMs })
    if (proc.aborted) throw new AbortedError()
    if (r.code !== 0) throw new Error(`s3tool ${op.op} failed: ${r.stderr.trim().split('\n').slice(0, 3).join(' ')}`)
    return JSON.parse(r.stdout) as T
  }

  /** CPU seconds (user + system) the server has used so far. */
  async cpuSeconds (): Promise<number> {
    const stat = await fs.promises.readFile(`/proc/${this.pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100 // utime, stime: fields 14, 15 of stat(5), in clock ticks
  }

  /**
   * Waits until the server has been idle (under 2% of a CPU) for `quietMs`: a listing pass of the
   * daemon still running would otherwise share the CPU with what is measured next.
   */
  async waitIdle (quietMs = 2000, timeoutMs = 600_000): Promise<number> {
    const start = Date.now()
    let quietSince = Date.now()
    let last = await this.cpuSeconds()
    while (Date.now() - quietSince < quietMs) {
      if (Date.now() - start > timeoutMs) throw new Error(`S3 server still busy after ${timeoutMs} ms`)
      if (proc.aborted) throw new AbortedError()
      await sleep(500)
      const now = await this.cpuSeconds()
      if (now - last > 0.01) quietSince = Date.now()
      last = now
    }
    return (Date.now() - start) / 1000
  }

  /** SIGTERM (the server closes), SIGKILL after 10 s. Callers at the same time share one stop. */
  stop (): Promise<void> {
    this.stopping ??= this.stopNow().finally(() => { this.stopping = undefined })
    return this.stopping
  }

  private async stopNow (): Promise<void> {
    this.unregister()
    const child = this.child
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(timer)
    }
    this.child = undefined
  }
}
