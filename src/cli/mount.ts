/**
 * Running and stopping the daemon: in the foreground (systemd, a terminal, tests), detached for the
 * mount helper, and the stop/status side that finds a running daemon by its pid file.
 */
import type { CacheStatus } from '../content/cache'
import fs from 'node:fs'
import path from 'node:path'
import { spawn } from 'node:child_process'
import type { Daemon as DaemonType } from '../daemon/daemon'
import { loadConfig } from '../daemon/config'
import { isMounted } from '../daemon/mountpoint'
import { UsageError } from '../util/errors'
import type { QueueStatus } from '../api/routes/status'
import { callApi } from '../api/client'
import { socketPath } from '../api/paths'

const STOP_SIGNALS = ['SIGTERM', 'SIGINT'] as const

export async function runForeground (configPath: string, mountpoint?: string): Promise<void> {
  // Loaded here, not at the top: the daemon's modules (fastify, the AWS SDK, LevelDB) cost ~0.4 s,
  // which every other CLI command (status, bucket …) would pay for nothing.
  const { Daemon } = await import('../daemon/daemon') as { Daemon: typeof DaemonType }
  // Handlers go in before the start: a signal while mounting must not kill the daemon with the
  // default action (that leaves a dead mount). They stay installed while stopping: a second Ctrl-C
  // or SIGTERM must not kill it halfway through its unmount either.
  let signalled: string | undefined
  let stop: ((signal: string) => void) | undefined
  const onSignal = (signal: string): void => {
    if (stop !== undefined) stop(signal)
    else signalled ??= signal
  }
  for (const s of STOP_SIGNALS) process.on(s, onSignal)
  const daemon = await Daemon.start(configPath, { mountpoint })
  await new Promise<void>((resolve) => {
    let stopping = false
    stop = (signal) => {
      if (stopping) { daemon.log.info('already stopping', { signal }); return }
      stopping = true
      daemon.log.info('stopping', { signal })
      daemon.stop().then(resolve, resolve)
    }
    if (signalled !== undefined) stop(signalled)
  })
  process.exit(0)
}

/**
 * Starts `s3link mount NAME` detached, its log appended to STATE/daemon.log, and waits for the
 * "ready" line it writes on the pipe passed as fd 3, or for it to exit with an error.
 */
export async function runBackground (name: string, configPath: string, mountpoint?: string): Promise<void> {
  const config = await loadConfig(configPath)
  const logPath = path.join(config.stateDir, 'daemon.log')
  const log = await fs.promises.open(logPath, 'a', 0o640)
  const args = [path.join(__dirname, '../../bin/s3link'), 'mount', name, '--config', configPath]
  if (mountpoint !== undefined) args.push('--mountpoint', mountpoint)
  const child = spawn(process.execPath, args, {
    detached: true,
    stdio: ['ignore', log.fd, log.fd, 'pipe'],
    // As the systemd unit does (see systemd/s3link@.service): fewer glibc arenas, less idle RSS.
    env: { MALLOC_ARENA_MAX: '2', ...process.env, S3LINK_READY_FD: '3' }
  })
  await log.close()
  const ready = child.stdio[3] as NodeJS.ReadableStream
  const outcome = await new Promise<'ready' | number>((resolve) => {
    ready.on('data', (chunk: Buffer) => { if (chunk.toString().includes('ready')) resolve('ready') })
    child.on('exit', (code) => resolve(code ?? 1))
  })
  if (outcome !== 'ready') {
    const tail = (await fs.promises.readFile(logPath, 'utf8')).trim().split('\n').slice(-3).join('\n')
    throw new UsageError(`the daemon exited (code ${outcome}) before mounting; end of ${logPath}:\n${tail}`)
  }
  child.unref()
  ;(ready as unknown as { destroy: () => void }).destroy()
}

async function daemonPid (stateDir: string): Promise<number | undefined> {
  const text = await fs.promises.readFile(path.join(stateDir, 'daemon.pid'), 'utf8').catch(() => undefined)
  const pid = Number(text?.trim())
  if (!Number.isInteger(pid) || pid <= 0) return undefined
  try {
    process.kill(pid, 0)
    return pid
  } catch {
    return undefined
  }
}

/** SIGTERM to the daemon, then wait (up to a minute) for it to drain, unmount and exit. */
export async function stopDaemon (configPath: string): Promise<void> {
  const config = await loadConfig(configPath)
  const pid = await daemonPid(config.stateDir)
  if (pid === undefined) throw new UsageError(`file system ${config.name} is not running`)
  process.kill(pid, 'SIGTERM')
  for (let i = 0; i < 600; i++) {
    if (await daemonPid(config.stateDir) === undefined) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new UsageError(`the daemon (pid ${pid}) did not stop within 60 s`)
}

export interface FsStatus {
  name: string
  mountpoint: string
  stateDir: string
  mounted: boolean
  pid?: number
  /** From the running daemon's API (GET /api/status); absent when it is not running. */
  id?: string
  apiUrl?: string
  apiSocket?: string
  queues?: QueueStatus
  cache?: CacheStatus
}

export async function status (configPath: string): Promise<FsStatus> {
  const config = await loadConfig(configPath)
  const pid = await daemonPid(config.stateDir)
  const s: FsStatus = { name: config.name, mountpoint: config.mountpoint, stateDir: config.stateDir, mounted: await isMounted(config.mountpoint), pid }
  if (pid !== undefined) {
    // A daemon still starting (or an older one) may not answer yet: status then shows what it can.
    const api = await callApi(socketPath(config.stateDir), 'GET', '/api/status').catch(() => undefined)
    if (api?.status === 200) {
      s.id = String(api.body.id)
      s.apiUrl = String(api.body.apiUrl)
      s.apiSocket = socketPath(config.stateDir)
      s.queues = api.body.queues as QueueStatus
      if (api.body.cache !== undefined) s.cache = api.body.cache as CacheStatus
    }
  }
  return s
}
