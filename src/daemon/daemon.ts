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
import { fuseOps, toAttr } from '../fuse/adapter'
import { mountFuse, sdNotify, type FuseMount } from '../fuse/native'
import { type Config, loadConfig } from './config'
import { createLogger, type Logger } from './logger'
import { prepareMountpoint, isMounted } from './mountpoint'
import type { FsMeta } from './init'
import { Services } from './services'
import { UsageError } from '../util/errors'
import { Cache, type CacheLimits } from '../content/cache'
import { PassthroughFiles } from '../fs/passthrough'

const MOUNT_WATCH_MS = 2000
/** Longest any one stop step may take before the next one runs. */
const STEP_LIMIT_MS = 15_000

export class Daemon {
  private store?: Store
  private filesystem?: FileSystem
  private mount?: FuseMount
  private flushTimer?: NodeJS.Timeout
  private mountWatch?: NodeJS.Timeout
  private watcher?: FSWatcher
  private stopping?: Promise<void>
  private services?: Services
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
    this.cache = new Cache({ ...this.filesystem.cacheHost(), pendingExports: () => this.services?.pendingExports ?? 0 }, cacheLimits(config), {
      log: log.child({ subsystem: 'cache' }), waitMs: Math.max(1000, Math.min(10_000, config.fuseTimeoutMs - 5000))
    })
    this.filesystem.attachSpace(this.cache)
    this.cache.start()

    // Services first: from the mount's first request on, changes are queued for export and
    // released files can load.
    await Services.start({ config, log, meta, store: this.store, filesystem: this.filesystem, cache: this.cache }, (s) => { this.services = s })
    if (await prepareMountpoint(config.mountpoint) === 'stale-cleaned') {
      log.warn('cleaned up a stale mount left by a daemon that died', { mountpoint: config.mountpoint })
    }
    this.mount = await mountFuse(config.mountpoint, fuseOps(this.filesystem, content.dir, log.child({ subsystem: 'fuse' }), this.cache), {
      options: mountOptions(config),
      timeoutMs: config.fuseTimeoutMs,
      readAheadKiB: config.readAheadKiB
    })
    const mount = this.mount
    this.filesystem.attachDirectIo(mount)
    if (config.passthrough) this.filesystem.attachPassthrough(new PassthroughFiles(mount, (message) => { log.warn(message) }))
    // The binding's copies of attributes follow every commit; what it kept while the mount was
    // being set up, before this hook, is dropped.
    this.filesystem.ns.onAttrsChanged(({ dirs, stale }) => {
      if (stale.length > 0) mount.forgetAttrs(stale)
      if (dirs.length > 0) mount.updateDirs(dirs.map(toAttr))
    })
    mount.forgetAttrs(null)
    this.flushTimer = setInterval(() => {
      this.filesystem?.ns.flush().catch((err: unknown) => log.error('saving open files failed', { error: String(err) }))
    }, config.flushIntervalMs)
    this.watchConfig()
    this.watchMount()
    await fs.promises.writeFile(path.join(config.stateDir, 'daemon.pid'), `${process.pid}\n`)
    log.info('ready', { id: meta.id, name: config.name, mountpoint: config.mountpoint, apiUrl: this.services?.apiUrl, cache: this.cache?.status() })
    sdNotify(`READY=1\nSTATUS=mounted at ${config.mountpoint}\nMAINPID=${process.pid}`)
    announceReady()
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
          if (limits.capacity !== undefined) this.filesystem?.capacityConfigured()
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
      ...(this.services?.stopSteps() ?? []),
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
 * libfuse options. big_writes lets the kernel send writes larger than 4 KiB (the measured
 * difference is 33 vs ~600 MB/s), up to the 1 MiB the FUSE binding asks for; use_ino reports our inode numbers (hard links share
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
