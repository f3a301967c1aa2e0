/**
 * The loads of a durable queue's in-memory window from LevelDB (export-queue.ts, import-queue.ts):
 * one at a time, each after the one before. A load that fails (a disk error) is reported and tried
 * again with capped backoff: otherwise the queue would sit idle, with entries on disk only, until
 * something else woke it.
 */
import { Mutex } from '../util/mutex'

const FIRST_RETRY_MS = 500
const MAX_RETRY_MS = 30_000

export class QueueLoads {
  private readonly mutex = new Mutex()
  private retryMs = 0
  private timer?: NodeJS.Timeout
  /** Told of each failed load, and when it is tried again. */
  onFailure?: (err: unknown, retryInMs: number) => void

  /** Runs `load` after the loads before it, then `loaded`; a failure schedules `again` (the queue's kick). */
  run (load: () => Promise<void>, loaded: () => void, again: () => void): void {
    void this.mutex.run(load).then(() => {
      this.retryMs = 0
      loaded()
    }, (err: unknown) => {
      this.retryMs = Math.min(MAX_RETRY_MS, this.retryMs === 0 ? FIRST_RETRY_MS : this.retryMs * 2)
      this.onFailure?.(err, this.retryMs)
      clearTimeout(this.timer)
      // Unref'd: a retry alone must not keep a stopping process alive.
      this.timer = setTimeout(again, this.retryMs).unref()
    })
  }

  stop (): void {
    clearTimeout(this.timer)
  }
}
