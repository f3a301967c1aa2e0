/**
 * Works the DRA request queue, one request at a time in queue order, and checks the health of
 * settled associations now and then (spec/fsx-dra.md §10):
 *
 *   create   make the directory (mkdir -p, root 0755), then check → AVAILABLE / MISCONFIGURED / FAILED
 *   update   check → AVAILABLE / MISCONFIGURED / FAILED (an update naming only the id is the way
 *            to re-check a MISCONFIGURED association at once)
 *   delete   with DeleteDataInFileSystem, remove the directory and everything in it; then forget it
 *   health   every checkIntervalMs, each AVAILABLE or MISCONFIGURED association is checked again;
 *            a request queued meanwhile goes first (the check in progress is abandoned). An
 *            AVAILABLE association turns MISCONFIGURED on a failure that may pass on its own (5xx,
 *            timeout, connection refused) only when TRANSIENT_STRIKES checks in a row fail: one
 *            blip must not park every export (the exports retry with backoff meanwhile)
 *
 * The check: the linked directory must exist (else FAILED, which is final: FSx's "the file system
 * path was deleted"); the bucket must answer HeadBucket and ListObjectsV2 with its credentials
 * (bucket missing → FAILED; unreachable, access denied, anything else → MISCONFIGURED with the
 * reason). Every step is idempotent, so a request interrupted by a crash is simply worked again at
 * the next start: the request stays queued until `complete` removes it in the same batch as its
 * outcome.
 */
import type { Logger } from '../daemon/logger'
import type { ProbeResult } from '../repo/bucket-probe'
import type { Lifecycle, DraRecord } from './association'
import type { Associations, DraRequest, PathKind } from './associations'
import { parseRepositoryPath } from './paths'

export interface LinkedTree {
  kind: (path: string) => Promise<PathKind>
  /** mkdir -p; throws if a component exists and is not a directory. */
  ensureDir: (path: string) => Promise<void>
  /** Removes everything below path, and path itself unless it is the root. */
  removeTree: (path: string) => Promise<void>
}

export interface WorkerOptions {
  associations: Associations
  tree: LinkedTree
  probe: (bucket: string) => Promise<ProbeResult>
  log: Logger
  checkIntervalMs: number
}

interface Verdict { lifecycle: Lifecycle, failure?: string, transient?: boolean }

const TRANSIENT_STRIKES = 3

export class DraWorker {
  private wake?: () => void
  private stopped = false
  private running?: Promise<void>
  private nextCheck = 0
  /** Health checks in a row that failed transiently, per AVAILABLE association. */
  private readonly strikes = new Map<string, number>()

  constructor (private readonly o: WorkerOptions) {}

  private readonly onQueued = (): void => this.wake?.()

  start (): void {
    this.o.associations.on('queued', this.onQueued)
    this.nextCheck = Date.now() + this.o.checkIntervalMs
    this.running = this.loop()
  }

  /**
   * Stops taking work. A request being worked is left queued (it is worked again at the next start):
   * stopping does not wait for a slow bucket check to time out.
   */
  async stop (): Promise<void> {
    this.stopped = true
    this.o.associations.off('queued', this.onQueued)
    this.wake?.()
    await Promise.race([this.running, new Promise((resolve) => setTimeout(resolve, 2000).unref())])
  }

  private async loop (): Promise<void> {
    while (!this.stopped) {
      const request = this.o.associations.nextRequest()
      try {
        if (request !== undefined) await this.work(request)
        else if (Date.now() >= this.nextCheck) await this.checkAll()
        else await this.sleep(this.nextCheck - Date.now())
      } catch (err) {
        // Only the database can fail here (every S3 and file system error becomes a verdict):
        // keep the request queued and try again later.
        this.o.log.error('DRA worker step failed; retrying', { error: String(err), request })
        await this.sleep(1000)
      }
    }
  }

  private sleep (ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      function done (): void { clearTimeout(timer); resolve() }
      this.wake = done
    })
  }

  private async work (request: DraRequest): Promise<void> {
    const { associations, log } = this.o
    const record = associations.get(request.AssociationId)
    const started = Date.now()
    if (record === undefined) {
      await associations.complete(request, 'removed')
      return
    }
    if (request.op === 'delete') {
      const outcome = await this.remove(record, request.DeleteDataInFileSystem === true)
      if (this.stopped) return
      await associations.complete(request, outcome)
      log.info(outcome === 'removed' ? 'data repository association deleted' : 'deleting a data repository association failed', {
        associationId: record.AssociationId, deleteData: request.DeleteDataInFileSystem === true, ms: Date.now() - started,
        ...(outcome !== 'removed' ? { failure: outcome.failure } : {})
      })
      return
    }
    // A create or update overtaken by a delete has nothing left to do.
    if (record.Lifecycle === 'DELETING') {
      await associations.complete(request, { lifecycle: 'DELETING' })
      return
    }
    const verdict = request.op === 'create' ? await this.link(record) : await this.check(record)
    if (this.stopped) return
    await associations.complete(request, verdict)
    log[verdict.lifecycle === 'AVAILABLE' ? 'info' : 'warn'](`data repository association ${request.op === 'create' ? 'created' : 'updated'}`, {
      associationId: record.AssociationId, fileSystemPath: record.FileSystemPath, dataRepositoryPath: record.DataRepositoryPath,
      lifecycle: verdict.lifecycle, failure: verdict.failure, ms: Date.now() - started
    })
  }

  private async link (record: DraRecord): Promise<Verdict> {
    try {
      await this.o.tree.ensureDir(record.FileSystemPath)
    } catch (err) {
      return { lifecycle: 'FAILED', failure: `cannot create the directory ${record.FileSystemPath}: ${(err as Error).message}` }
    }
    return await this.check(record)
  }

  private async check (record: DraRecord): Promise<Verdict> {
    const kind = await this.o.tree.kind(record.FileSystemPath)
    if (kind !== 'directory') {
      return { lifecycle: 'FAILED', failure: `the file system path ${record.FileSystemPath} ${kind === 'missing' ? 'no longer exists' : 'is no longer a directory'}` }
    }
    const { bucket } = parseRepositoryPath(record.DataRepositoryPath)
    const probe = await this.o.probe(bucket)
    if (probe.authorized) return { lifecycle: 'AVAILABLE' }
    if (probe.exists === false) return { lifecycle: 'FAILED', failure: `the S3 bucket ${bucket} does not exist: ${probe.error ?? ''}` }
    return { lifecycle: 'MISCONFIGURED', failure: `cannot use the S3 bucket ${bucket}: ${probe.error ?? 'unknown error'}`, transient: probe.transient }
  }

  private async remove (record: DraRecord, deleteData: boolean): Promise<'removed' | Verdict> {
    if (!deleteData) return 'removed'
    try {
      await this.o.tree.removeTree(record.FileSystemPath)
      return 'removed'
    } catch (err) {
      return { lifecycle: 'FAILED', failure: `deleting the data in ${record.FileSystemPath} failed: ${(err as Error).message}` }
    }
  }

  /**
   * A health check gives way to a request queued meanwhile: a hanging bucket (up to the probe's
   * 15 s timeout) must not delay a create that was answered CREATING. The abandoned check runs out
   * on its own and its verdict is dropped (the next round checks again).
   */
  private async unlessQueued<T> (work: Promise<T>): Promise<T | undefined> {
    work.catch(() => undefined) // abandoned: its failure is nobody's business
    let onQueued = (): void => undefined
    const queued = new Promise<undefined>((resolve) => { onQueued = () => resolve(undefined) })
    this.o.associations.once('queued', onQueued)
    try {
      return await Promise.race([work, queued])
    } finally {
      this.o.associations.off('queued', onQueued)
    }
  }

  private async checkAll (): Promise<void> {
    this.nextCheck = Date.now() + this.o.checkIntervalMs
    for (const record of this.o.associations.list()) {
      if (this.stopped || this.o.associations.nextRequest() !== undefined) return
      if (record.Lifecycle !== 'AVAILABLE' && record.Lifecycle !== 'MISCONFIGURED') continue
      const verdict = await this.unlessQueued(this.check(record))
      if (this.stopped || verdict === undefined) return
      if (record.Lifecycle === 'AVAILABLE' && verdict.transient === true) {
        const strikes = (this.strikes.get(record.AssociationId) ?? 0) + 1
        this.strikes.set(record.AssociationId, strikes)
        if (strikes < TRANSIENT_STRIKES) {
          this.o.log.info('data repository association check failed; it stays AVAILABLE unless the next checks fail too', {
            associationId: record.AssociationId, failure: verdict.failure, strikes
          })
          continue
        }
      }
      this.strikes.delete(record.AssociationId)
      if (verdict.lifecycle !== record.Lifecycle || verdict.failure !== record.FailureDetails?.Message) {
        this.o.log.warn('data repository association changed state', {
          associationId: record.AssociationId, from: record.Lifecycle, to: verdict.lifecycle, failure: verdict.failure
        })
      }
      await this.o.associations.settle(record.AssociationId, verdict.lifecycle, verdict.failure)
    }
  }
}
