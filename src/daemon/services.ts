/**
 * Everything that links the file system to S3, with the control API that serves it: the bucket
 * table and its S3 clients, the DRAs and their request worker (which resumes requests a previous
 * run left unfinished), lazy loading of released files, import (tasks, listings, the durable queue
 * of webhook and SQS changes), export (the durable automatic queue, tasks, the transfer worker
 * that makes their S3 writes off the main thread), metrics.
 *
 * Started before the mount, so that from the mount's first request on changes are queued for
 * export and released files can load; stopped right after the control API closes (`stopSteps`).
 */
import path from 'node:path'
import type { Store } from '../store/db'
import type { FileSystem } from '../fs/filesystem'
import type { Cache } from '../content/cache'
import type { Config } from './config'
import type { FsMeta } from './init'
import type { Logger } from './logger'
import { ApiServer, socketPath } from '../api/server'
import type { QueueStatus } from '../api/routes/status'
import { loadAdminCredentials } from '../api/auth'
import { BucketTable } from '../repo/bucket-table'
import { S3Clients } from '../repo/s3-clients'
import { Transfers } from '../repo/transfers'
import { probeBucket } from '../repo/bucket-probe'
import { Associations } from '../dra/associations'
import { DraWorker } from '../dra/worker'
import { ensureDir, pathKind, removeTree } from '../fs/tree'
import { fsxOperations } from '../api/fsx/operations'
import { ContentLoader } from '../content/loader'
import { ListedSettler } from '../sync/listed-settler'
import { describeS3Error, getObjectRange, s3ErrorCode } from '../repo/objects'
import type { Inode } from '../namespace/inode'
import { ImportService } from '../sync/import-service'
import { TaskService } from '../sync/tasks'
import { taskOperations } from '../api/fsx/task-operations'
import { AutoImporter } from '../sync/auto-import'
import { ImportQueue } from '../sync/import-queue'
import { ChangeApplier } from '../sync/change-applier'
import { SqsImporter } from '../sync/sqs-import'
import { Metrics } from '../util/metrics'
import { ExportQueue } from '../sync/export-queue'
import { Exporter } from '../sync/exporter'
import { TreeExport } from '../sync/task-export'

/** The account id in ARNs: s3link has no AWS account of its own. */
const ACCOUNT_ID = '000000000000'
/**
 * Exports yield to heavy writing: above this rate of bytes written through the mount, at most
 * YIELD_SLOTS exports run (uploads, the S3 server's work and the queue's all take CPU and disk
 * from the writer). Small-file work stays below it; a backlog still drains, just slower.
 */
const YIELD_ABOVE_BYTES_PER_S = 32 * 2 ** 20
const YIELD_SLOTS = 2

export interface ServicesContext {
  config: Config
  log: Logger
  meta: FsMeta
  store: Store
  filesystem: FileSystem
  cache?: Cache
}

export type StopStep = [string, () => Promise<void> | void]

export class Services {
  private api?: ApiServer
  private clients?: S3Clients
  private draWorker?: DraWorker
  private loader?: ContentLoader
  private settler?: ListedSettler
  private tasks?: TaskService
  private autoImport?: AutoImporter
  private importQueue?: ImportQueue
  private sqsImport?: SqsImporter
  private exportQueue?: ExportQueue
  private transfers?: Transfers

  private constructor (private readonly c: ServicesContext) {}

  /** Starts every service; on failure, what did start is left for stopSteps(). */
  static async start (c: ServicesContext, started: (s: Services) => void): Promise<Services> {
    const services = new Services(c)
    started(services)
    await services.open()
    return services
  }

  get apiUrl (): string | undefined { return this.api?.url }

  /** Changes waiting for export (files that may become releasable soon). */
  get pendingExports (): number { return this.exportQueue?.size ?? 0 }

  /** What stopping takes, in order: no new requests first; running uploads get a few seconds. */
  stopSteps (): StopStep[] {
    return [
      ['stop control API', async () => { await this.api?.close() }],
      ['stop automatic import', async () => { await this.autoImport?.stop(); await this.sqsImport?.stop(); await this.importQueue?.stop() }],
      ['stop export (running uploads get a few seconds; the rest stays queued)', async () => { await this.exportQueue?.stop() }],
      ['stop tasks', async () => { await this.tasks?.stop() }],
      // After export and tasks, its only users: what it still runs fails and stays queued.
      ['stop the transfer worker', async () => { await this.transfers?.close() }],
      ['stop DRA worker', async () => { await this.draWorker?.stop() }],
      ['stop loads', async () => { await this.loader?.close() }],
      ['stop settling imported entries', async () => { await this.settler?.close() }],
      ['close S3 clients', () => { this.clients?.close() }]
    ]
  }

  private async open (): Promise<void> {
    const { config, log, meta, store, filesystem, cache } = this.c
    const credentials = await loadAdminCredentials(path.join(config.stateDir, 'credentials.json'))
    const table = new BucketTable(store)
    const clients = this.clients = new S3Clients(table, {
      stsEndpoint: process.env.S3LINK_STS_ENDPOINT ?? config.stsEndpoint,
      sessionName: `s3link-${meta.id}`,
      idleTimeoutMs: config.s3IdleTimeoutMs
    })
    const loader = this.attachLoader(clients)
    const associations = await Associations.open(store, { id: meta.id, region: config.region, account: ACCOUNT_ID }, async (p) => await pathKind(filesystem, p))
    this.draWorker = new DraWorker({
      associations,
      tree: {
        kind: async (p) => await pathKind(filesystem, p),
        ensureDir: async (p) => { await ensureDir(filesystem, p) },
        removeTree: async (p) => { await removeTree(filesystem, p) }
      },
      probe: async (bucket) => await probeBucket(clients, bucket),
      log: log.child({ subsystem: 'dra' }),
      checkIntervalMs: config.draCheckIntervalMs
    })
    this.draWorker.start()
    const settler = this.settler = new ListedSettler({ filesystem, clients, log: log.child({ subsystem: 'import' }) })
    filesystem.attachSettler(async (inode, ahead) => { await (ahead ? settler.settle(inode) : settler.onLookup(inode)) })
    settler.kick() // what a stop or a crash left listed-only
    const imports = new ImportService(associations, filesystem, clients, () => { settler.kick() })
    // Export on request (export tasks, hsm archive) goes through the automatic export's Exporter;
    // its S3 writes are made by the transfer worker, off the thread that answers FUSE.
    const transfers = this.transfers = new Transfers(log.child({ subsystem: 'export' }), { idleTimeoutMs: config.s3IdleTimeoutMs })
    transfers.start()
    const exporter = new Exporter({ associations, filesystem, clients, transfers, log: log.child({ subsystem: 'export' }) })
    const treeExport = new TreeExport({ filesystem, exporter, associations, log: log.child({ subsystem: 'export' }) })
    const tasks = this.tasks = await TaskService.open({
      store, associations, imports, exports: treeExport, clients, dir: path.join(config.stateDir, 'tasks'), log: log.child({ subsystem: 'task' })
    })
    tasks.start()
    const metrics = new Metrics(() => this.importQueue?.oldestAgeSeconds() ?? 0,
      () => ({ depth: this.exportQueue?.size ?? 0, oldestAgeSeconds: this.exportQueue?.oldestAgeSeconds() ?? 0 }))
    if (cache !== undefined) {
      metrics.useCache(() => cache.status())
      filesystem.onReleased((bytes, by) => {
        metrics.cacheReleasedBytes.inc({ by }, bytes)
        if (by === 'cache') metrics.cacheEvictions.inc()
      })
    }
    filesystem.onPassedThrough(() => { metrics.passthroughOpens.inc() })
    const exportPending = async (p: string): Promise<boolean> => await this.exportQueue?.isPending(p) ?? false
    this.autoImport = new AutoImporter({ associations, filesystem, clients, exportPending, onImported: () => { settler.kick() }, metrics, log: log.child({ subsystem: 'import' }), intervalMs: config.importIntervalMs })
    this.autoImport.start()
    const importQueue = this.importQueue = await ImportQueue.open(store)
    treeExport.useMetrics(metrics)
    // Writing through the mount comes first: while it runs fast, exports go a few at a time.
    const exportSlots = (): number => filesystem.writeRate() > YIELD_ABOVE_BYTES_PER_S ? Math.min(YIELD_SLOTS, config.exportConcurrency) : config.exportConcurrency
    const exportQueue = this.exportQueue = await ExportQueue.open(store, filesystem.ns, (p) => exporter.exported(p), exportSlots)
    this.startExport(exporter, exportQueue, metrics, associations)
    this.startEventImport(importQueue, new ChangeApplier({ associations, filesystem, clients, exportPending, log: log.child({ subsystem: 'import' }) }), metrics)
    this.sqsImport = new SqsImporter({
      associations, table, queue: importQueue, metrics, log: log.child({ subsystem: 'import' }),
      credentials: { stsEndpoint: process.env.S3LINK_STS_ENDPOINT ?? config.stsEndpoint, sessionName: `s3link-${meta.id}` }
    })
    this.sqsImport.start()
    const fsx = { ...fsxOperations(associations, { id: meta.id, name: config.name, created: meta.created, mountpoint: config.mountpoint, stateDir: config.stateDir }), ...taskOperations(tasks) }
    const queues = async (): Promise<QueueStatus> => ({
      export: {
        queued: exportQueue.size,
        oldestAgeSeconds: exportQueue.oldestAgeSeconds(),
        bytesPending: await exportQueue.pendingBytes(async (p) => (await filesystem.resolve(p).catch(() => undefined))?.size ?? 0),
        failures: await metrics.exportFailureCount()
      },
      import: { queued: importQueue.size, oldestAgeSeconds: importQueue.oldestAgeSeconds() },
      cache: cache?.status()
    })
    this.api = await ApiServer.start({ table, clients, fsx, importQueue, metrics, log, filesystem, loader, treeExport, queues }, {
      stateDir: config.stateDir,
      address: config.api.address,
      port: config.api.port,
      credentials,
      identity: { id: meta.id, name: config.name, mountpoint: config.mountpoint }
    })
    log.info('control API listening', { url: this.api.url, socket: socketPath(config.stateDir) })
  }

  /**
   * Automatic export: namespace changes are queued in their own batches; the queue is worked from
   * now on, starting with what a previous run left (also after kill -9).
   */
  private startExport (exporter: Exporter, queue: ExportQueue, metrics: Metrics, associations: Associations): void {
    this.c.filesystem.onChange(async (tx, change) => { await queue.onChange(tx, change) })
    this.c.filesystem.onWriterClosed((path) => { queue.wake(path) })
    exporter.useMetrics(metrics)
    if (queue.size > 0) this.c.log.info('resuming queued exports', { count: queue.size })
    queue.onLoadFailure = (err, retryInMs) => { this.c.log.error('reading the export queue from the database failed; retrying', { subsystem: 'export', error: String(err), retryInMs }) }
    queue.start(async (entry) => await exporter.run(entry))
    // A DRA usable again (health check, update): its waiting exports go now.
    associations.on('changed', (id: string) => { if (associations.get(id)?.Lifecycle === 'AVAILABLE') queue.unpark() })
  }

  /** Changes notified by S3 (webhook, SQS) are applied from the durable queue, retried with backoff. */
  private startEventImport (queue: ImportQueue, applier: ChangeApplier, metrics: Metrics): void {
    const log = this.c.log.child({ subsystem: 'import' })
    if (queue.size > 0) log.info('resuming queued S3 changes', { count: queue.size })
    queue.onLoadFailure = (err, retryInMs) => { log.error('reading the import queue from the database failed; retrying', { error: String(err), retryInMs }) }
    queue.start(async (change) => {
      const result = await applier.apply(change)
      metrics.importEvents.inc({ source: 'queue', result })
      if (result === 'applied') metrics.objectsImported.inc({ via: 'automatic' })
    }, (change, err, delayMs) => {
      metrics.importEvents.inc({ source: 'queue', result: 'failed' })
      log.warn('applying an S3 change failed; retrying', { bucket: change.bucket, key: change.key, error: describeS3Error(err), retryInMs: delayMs })
    })
  }

  /**
   * Lazy loading of released files: ranged GETs through the bucket's client, pinned to the ETag
   * the file was imported with. Readers wait at most 5 s less than the FUSE request timeout, so the
   * kernel always gets an answer (EIO) before the request itself would time out.
   */
  private attachLoader (clients: S3Clients): ContentLoader {
    const { filesystem, config, cache } = this.c
    const log = this.c.log.child({ subsystem: 'import' })
    this.loader = new ContentLoader(filesystem.content, {
      fetcherFor: async (inode: Inode) => {
        const remote = inode.remote
        if (remote === undefined) throw new Error('the file has no S3 object to load from')
        const { client } = await clients.forBucket(remote.bucket)
        return async (start, end, signal) => await getObjectRange(client, remote.bucket, remote.key, remote.etag, start, end === undefined ? undefined : end - 1, signal)
      },
      onLoaded: async (ino, etag) => { await filesystem.markLoaded(ino, etag) },
      onError: (ino, err) => {
        const code = s3ErrorCode(err)
        const vanished = code === 'S3ObjectNotFound' || (err as Error).name === 'PreconditionFailed'
        log.error('loading a file from S3 failed', { ino, event: vanished ? 'S3ObjectNotFound' : code, error: describeS3Error(err) })
        if (vanished) filesystem.markLost(ino).catch((e: unknown) => log.error('recording a lost file failed', { ino, error: String(e) }))
      },
      deadlineMs: Math.max(1000, config.fuseTimeoutMs - 5000),
      space: cache
    })
    filesystem.attachLoader(this.loader)
    return this.loader
  }
}
