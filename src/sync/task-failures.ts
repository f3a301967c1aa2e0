/**
 * The failed files of a running task, kept as completion-report lines in a file under the state
 * directory (a task may fail millions of files: not in memory), then uploaded as the report.
 * Writes are not awaited one by one: a page of results (≤ 1,000 lines) is buffered at most, and
 * `close` waits until all of it is on disk or reports the first write error.
 */
import fs from 'node:fs'
import path from 'node:path'
import { reportLine } from './report-csv'

export class FailureFile {
  private error?: Error

  private constructor (readonly file: string, private readonly stream: fs.WriteStream) {
    stream.on('error', (err) => { this.error ??= err })
  }

  /** Starts an empty file (a task run again after a restart starts its report anew). */
  static async create (file: string): Promise<FailureFile> {
    await fs.promises.mkdir(path.dirname(file), { recursive: true, mode: 0o700 })
    const stream = fs.createWriteStream(file, { flags: 'w', mode: 0o600 })
    await new Promise<void>((resolve, reject) => { stream.once('open', () => resolve()); stream.once('error', reject) })
    return new FailureFile(file, stream)
  }

  add (filePath: string, errorCode: string): void {
    if (this.error === undefined) this.stream.write(reportLine(filePath, 'failed', errorCode))
  }

  async close (): Promise<void> {
    if (!this.stream.closed) await new Promise<void>((resolve) => this.stream.end(() => resolve()))
    if (this.error !== undefined) throw this.error
  }

  async remove (): Promise<void> {
    await this.close().catch(() => undefined)
    await fs.promises.rm(this.file, { force: true })
  }
}
