/**
 * The daemon's lifecycle, in a fixed order.
 *
 *   start: config → logger → database (refuse if another daemon holds it) → recovery (orphans)
 *          → bounded cache → services and control API (DRAs, import, export queues resumed; socket + TCP)
 *          → mountpoint check (stale mount cleaned) → mount → periodic flush → config watch → ready
 *   stop:  stop the control API (no new requests) → stop timers, watchers, cache → save in-memory
 *          changes → unmount → close contents and database
 *
 * `stop()` is idempotent and runs every step even when one fails. Readiness is announced only when
 * the mount answers: to systemd (sd_notify READY=1), to a waiting `mount --background` parent (a
 * line on fd 3), and in the log.
 */
import fs from 'node:fs'
import path from 'node:path'
import chokidar, { type FSWatcher } from 'chokidar'
import { Store } from '../store/db'
import { META_FS } from '../store/keys'
import { Namespace } from '../namespace/namespace'
import { ContentStore } from '../content/content'
import { FileSystem } from '../fs/filesystem'
import { fuseOps } from '../fuse/adapter'
import { mountFuse, sdNotify, type FuseMount } from '../fuse/native'
import { type Config, loadConfig } from './config'
import { createLogger, type Logger } from './logger'
import { prepareMountpoint, isMounted } from './mountpoint'

const MOUNT_WATCH_MS = 2000
/** Longest any one stop step may take before the next one runs. */
const STEP_LIMIT_MS = 15_000
import type { FsMeta } from './init'
import { UsageError } from '../util/errors'
import { ApiServer, socketPath } from '../api/server'
import type { QueueStatus } from '../api/routes/status'
import { loadAdminCredentials } from '../api/auth'
import { BucketTable } from '../repo/bucket-table'
import { S3Clients } from '../repo/s3-clients'
import { probeBucket } from '../repo/bucket-probe'
import { Associations } from '../dra/associations'
import { DraWorker } from '../dra/worker'
import { ensureDir, pathKind, removeTree } from '../fs/tree'
import { fsxOperations } from '../api/fsx/operations'
import { ContentLoader } from '../content/loader'
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
import { Cache, type CacheLimits } from '../content/cache'

/** The account id in ARNs: s3link has no AWS account of its own. */
const ACCOUNT_ID = '000000000000'

export class Daemon {
  private store?: Store
  private filesystem?: FileSystem
  private mount?: FuseMount
  private flushTimer?: NodeJS.Timeout
  private mountWatch?: NodeJS.Timeout
  private watcher?: FSWatcher
  private stopping?: Promise<void>
  private api?: ApiServer
  private s3Clients?: S3Clients
  private draWorker?: DraWorker
  private loader?: ContentLoader
  private imports?: ImportService
  private tasks?: TaskService
  private autoImport?: AutoImporter
  private importQueue?: ImportQueue
  private sqsImport?: SqsImporter
  private exportQueue?: ExportQueue
  private cache?: Cache

  private constructor (private config: Config, private readonly configPath: string, readonly log: Logger) {}

  static async start (configPath: string, overrides: { mountpoint?: string } = {}): Promise<Daemon> {
    const config = await loadConfig(configPath)
    if (overrides.mountpoint !== undefined) config.mountpoint = path.resolve(overrides.mountpoint)
    const daemon = new Daemon(config, configPath, createLogger(config.logLevel))
    try {
      await daemon.open()
    } catch (err) {
      await daemon.stop()
      throw err
    }
    return daemon
  }

  private async open (): Promise<void> {
    const { config, log } = this
    this.store = await Store.open(path.join(config.stateDir, 'db'))
    // The database holds the bucket table's secrets: only root may read it (the state dir is 0700 too).
    await fs.promises.chmod(path.join(config.stateDir, 'db'), 0o700)
    const meta = await this.store.get<FsMeta>(META_FS)
    if (meta === undefined) throw new UsageError(`state directory ${config.stateDir} holds no s3link file system (run s3link init)`)
    const ns = await Namespace.open(this.store, { uid: 0, gid: 0, mode: 0o755 })
    const content = await ContentStore.create(path.join(config.stateDir, 'data'))
    this.filesystem = new FileSystem(ns, content)
    const reaped = await this.filesystem.reapOrphans()
    if (reaped > 0) log.info('removed files unlinked while open at the last stop', { count: reaped })
    // Writes wait for room at most 10 s, and 5 s less than the FUSE request timeout.
    this.cache = new Cache({ ...this.filesystem.cacheHost(), pendingExports: () => this.exportQueue?.size ?? 0 }, cacheLimits(config), {
      log: log.child({ subsystem: 'cache' }), waitMs: Math.max(1000, Math.min(10_000, config.fuseTimeoutMs - 5000))
    })
    this.filesystem.attachSpace(this.cache)
    this.cache.start()

    // Services first: from the mount's first request on, changes are queued for export and
    // released files can load.
    await this.startApi(meta)
    if (await prepareMountpoint(config.mountpoint) === 'stale-cleaned') {
      log.warn('cleaned up a stale mount left by a daemon that died', { mountpoint: config.mountpoint })
    }
    this.mount = await mountFuse(config.mountpoint, fuseOps(this.filesystem, content.dir, log.child({ subsystem: 'fuse' }), this.cache), {
      options: mountOptions(config),
      timeoutMs: config.fuseTimeoutMs
    })
    this.flushTimer = setInterval(() => {
      this.filesystem?.ns.flush().catch((err: unknown) => log.error('saving open files failed', { error: String(err) }))
    }, config.flushIntervalMs)
    this.watchConfig()
    this.watchMount()
    await fs.promises.writeFile(path.join(config.stateDir, 'daemon.pid'), `${process.pid}\n`)
    log.info('ready', { id: meta.id, name: config.name, mountpoint: config.mountpoint, apiUrl: this.api?.url, cache: this.cache?.status() })
    sdNotify(`READY=1\nSTATUS=mounted at ${config.mountpoint}\nMAINPID=${process.pid}`)
    announceReady()
  }

  /**
   * The control API: bucket table, its S3 clients, the DRAs and their request worker (which resumes
   * requests a previous run left unfinished), the listeners (src/api/server.ts).
   */
  private async startApi (meta: FsMeta): Promise<void> {
    const { config, log } = this
    const filesystem = this.filesystem
    if (this.store === undefined || filesystem === undefined) return
    const credentials = await loadAdminCredentials(path.join(config.stateDir, 'credentials.json'))
    const table = new BucketTable(this.store)
    const clients = this.s3Clients = new S3Clients(table, {
      stsEndpoint: process.env.S3LINK_STS_ENDPOINT ?? config.stsEndpoint,
      sessionName: `s3link-${meta.id}`
    })
    const loader = this.attachLoader(filesystem, clients)
    const associations = await Associations.open(this.store, { id: meta.id, region: config.region, account: ACCOUNT_ID }, async (p) => await pathKind(filesystem, p))
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
    this.imports = new ImportService(associations, filesystem, clients)
    // Export on request (export tasks, hsm archive) goes through the automatic export's Exporter.
    const exporter = new Exporter({ associations, filesystem, clients, log: log.child({ subsystem: 'export' }) })
    const treeExport = new TreeExport({ filesystem, exporter, associations, log: log.child({ subsystem: 'export' }) })
    const tasks = this.tasks = await TaskService.open({
      store: this.store, associations, imports: this.imports, exports: treeExport, clients, dir: path.join(config.stateDir, 'tasks'), log: log.child({ subsystem: 'task' })
    })
    tasks.start()
    const metrics = new Metrics(() => this.importQueue?.oldestAgeSeconds() ?? 0,
      () => ({ depth: this.exportQueue?.size ?? 0, oldestAgeSeconds: this.exportQueue?.oldestAgeSeconds() ?? 0 }))
    const cache = this.cache
    if (cache !== undefined) {
      metrics.useCache(() => cache.status())
      filesystem.onReleased((bytes, by) => {
        metrics.cacheReleasedBytes.inc({ by }, bytes)
        if (by === 'cache') metrics.cacheEvictions.inc()
      })
    }
    const exportPending = async (p: string): Promise<boolean> => await this.exportQueue?.isPending(p) ?? false
    this.autoImport = new AutoImporter({ associations, filesystem, clients, exportPending, metrics, log: log.child({ subsystem: 'import' }), intervalMs: config.importIntervalMs })
    this.autoImport.start()
    const importQueue = this.importQueue = await ImportQueue.open(this.store)
    treeExport.useMetrics(metrics)
    const exportQueue = this.exportQueue = await ExportQueue.open(this.store, filesystem.ns, (p) => exporter.exported(p), config.exportConcurrency)
    this.startExport(filesystem, exporter, exportQueue, metrics, associations)
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
  private startExport (filesystem: FileSystem, exporter: Exporter, queue: ExportQueue, metrics: Metrics, associations: Associations): void {
    filesystem.onChange(async (tx, change) => { await queue.onChange(tx, change) })
    exporter.useMetrics(metrics)
    if (queue.size > 0) this.log.info('resuming queued exports', { count: queue.size })
    queue.start(async (entry) => await exporter.run(entry))
    // A DRA usable again (health check, update): its waiting exports go now.
    associations.on('changed', (id: string) => { if (associations.get(id)?.Lifecycle === 'AVAILABLE') queue.unpark() })
  }

  /** Changes notified by S3 (webhook, SQS) are applied from the durable queue, retried with backoff. */
  private startEventImport (queue: ImportQueue, applier: ChangeApplier, metrics: Metrics): void {
    const log = this.log.child({ subsystem: 'import' })
    if (queue.size > 0) log.info('resuming queued S3 changes', { count: queue.size })
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
  private attachLoader (filesystem: FileSystem, clients: S3Clients): ContentLoader {
    const log = this.log.child({ subsystem: 'import' })
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
      deadlineMs: Math.max(1000, this.config.fuseTimeoutMs - 5000),
      space: this.cache
    })
    filesystem.attachLoader(this.loader)
    return this.loader
  }

  /** Settings that can change while running are applied when the config file changes. */
  private watchConfig (): void {
    this.watcher = chokidar.watch(this.configPath, { ignoreInitial: true, awaitWriteFinish: { stabilityThreshold: 100 } })
    this.watcher.on('change', () => {
      loadConfig(this.configPath).then((next) => {
        if (next.logLevel !== this.config.logLevel) {
          this.log.level = next.logLevel
          this.log.info('log level changed', { logLevel: next.logLevel })
        }
        const limits = cacheLimits(next)
        const before = cacheLimits(this.config)
        if (limits.capacity !== before.capacity || limits.highWatermark !== before.highWatermark || limits.lowWatermark !== before.lowWatermark) {
          this.cache?.configure(limits)
          this.log.info('cache limits changed', { ...limits })
        }
        this.config = { ...this.config, logLevel: next.logLevel, cacheCapacity: next.cacheCapacity, cacheHighWatermark: next.cacheHighWatermark, cacheLowWatermark: next.cacheLowWatermark }
      }, (err: unknown) => this.log.error('config change ignored', { error: (err as Error).message }))
    })
  }

  /**
   * `umount DIR` from outside (how fstab mounts are stopped at shutdown) ends libfuse's loop without
   * telling us; the binding has no callback for it, so we look for our mount now and then.
   */
  private watchMount (): void {
    this.mountWatch = setInterval(() => {
      isMounted(this.config.mountpoint).then((mounted) => {
        if (mounted || this.stopping !== undefined) return
        this.log.warn('unmounted from outside: stopping', { mountpoint: this.config.mountpoint })
        this.stop().finally(() => process.exit(0))
      }, (err: unknown) => this.log.error('cannot read the mount table', { error: String(err) }))
    }, MOUNT_WATCH_MS)
  }

  stop (): Promise<void> {
    this.stopping ??= this.close()
    return this.stopping
  }

  private async close (): Promise<void> {
    const steps: Array<[string, () => Promise<void> | void]> = [
      ['stop control API', async () => { await this.api?.close() }],
      ['stop automatic import', async () => { await this.autoImport?.stop(); await this.sqsImport?.stop(); await this.importQueue?.stop() }],
      ['stop export (running uploads get a few seconds; the rest stays queued)', async () => { await this.exportQueue?.stop() }],
      ['stop tasks', async () => { await this.tasks?.stop() }],
      ['stop DRA worker', async () => { await this.draWorker?.stop() }],
      ['stop loads', async () => { await this.loader?.close() }],
      ['close S3 clients', () => { this.s3Clients?.close() }],
      ['stop timers', () => { clearInterval(this.flushTimer); clearInterval(this.mountWatch) }],
      ['stop config watch', async () => { await this.watcher?.close() }],
      ['stop cache', async () => { await this.cache?.stop() }],
      ['save open files', async () => { await this.filesystem?.ns.flush(undefined, { sync: true }) }],
      ['unmount', async () => { if (this.mount !== undefined) await this.mount.unmount() }],
      ['close contents', async () => { await this.filesystem?.close() }],
      ['close database', async () => { await this.store?.close() }],
      ['remove pid file', async () => { await fs.promises.rm(path.join(this.config.stateDir, 'daemon.pid'), { force: true }) }]
    ]
    for (const [name, step] of steps) {
      try {
        // No step may hold the stop forever (an S3 call that hangs): the unmount must happen.
        await Promise.race([step(), new Promise((_resolve, reject) => setTimeout(() => reject(new Error(`did not finish within ${STEP_LIMIT_MS / 1000} s`)), STEP_LIMIT_MS).unref())])
      } catch (err) {
        this.log.error(`stop: ${name} failed`, { error: String(err) })
      }
    }
    this.log.info('stopped', { mountpoint: this.config.mountpoint })
  }
}

/**
 * libfuse options. big_writes lets the kernel send writes of up to 128 KiB instead of 4 KiB (the
 * measured difference is 33 vs ~600 MB/s); use_ino reports our inode numbers (hard links share
 * one). No hard_remove: with it, fstat(2) of an unlinked open file fails (the kernel asks by inode,
 * libfuse 2's high-level API knows only paths), so libfuse renames such a file to .fuse_hidden*
 * until its last close instead. auto_cache keeps the page cache across opens while mtime and size are unchanged.
 * attr_timeout=0 because libfuse 2's high-level API gives each path its own kernel inode: cached
 * attributes of one hard link would not see a change made through another (nlink, ctime, size).
 */
function mountOptions (config: Config): string[] {
  const options = ['big_writes', 'use_ino', 'default_permissions', 'auto_cache', 'attr_timeout=0',
    `fsname=s3link:${config.name}`, 'subtype=s3link']
  if (config.allowOther) options.push('allow_other')
  return options
}

function cacheLimits (config: Config): CacheLimits {
  return { capacity: config.cacheCapacity, highWatermark: config.cacheHighWatermark, lowWatermark: config.cacheLowWatermark }
}

/** Tells a `mount --background` parent, which passed us a pipe as fd 3, that the mount is up. */
function announceReady (): void {
  if (process.env.S3LINK_READY_FD !== '3') return
  // If the parent gave up waiting, the write fails: there is nobody left to tell.
  fs.write(3, 'ready\n', () => fs.close(3, () => undefined))
}
