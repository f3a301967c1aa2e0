/**
 * `s3link demo`: the two-minute tour, no AWS account needed. It starts the embedded S3 server and
 * the daemon as child processes (data under the state directory), creates the demo file system on
 * first use, links /data to the local bucket (demo-link.ts), prints what to try, and on Ctrl-C
 * stops both cleanly (unmounting first).
 */
import fs from 'node:fs'
import path from 'node:path'
import readline from 'node:readline'
import { spawn, type ChildProcess } from 'node:child_process'
import YAML from 'yaml'
import { initFileSystem } from '../daemon/init'
import { ConfigSchema, renderConfig } from '../daemon/config'
import { socketPath } from '../api/paths'
import { UsageError } from '../util/errors'
import { DEMO_DIR, linkDemo, type DemoLink } from './demo-link'

const DEMO_NAME = 'demo'
const DEMO_BUCKET = 's3link-demo'
/**
 * The local S3 server sends no event notifications, so the demo's automatic import compares
 * listings, and does so every 2 s (the default, 30 s, would make the tour look broken).
 */
const DEMO_IMPORT_INTERVAL_MS = 2000

export interface DemoOptions {
  mountpoint: string
  stateDir: string
  s3Port: number
}

interface Started { endpoint: string, link: DemoLink | Error }

export async function runDemo (o: DemoOptions): Promise<void> {
  const stateDir = path.resolve(o.stateDir)
  const mountpoint = path.resolve(o.mountpoint)
  const configPath = path.join(stateDir, 'demo.yaml')
  if (!fs.existsSync(configPath)) {
    await initFileSystem({ name: DEMO_NAME, mountpoint, stateDir, config: configPath })
    const config = YAML.parse(await fs.promises.readFile(configPath, 'utf8')) as Record<string, unknown>
    await fs.promises.writeFile(configPath, renderConfig(ConfigSchema.parse({ ...config, importIntervalMs: DEMO_IMPORT_INTERVAL_MS })))
  }
  const children: ChildProcess[] = []
  // Listen before starting anything, and until the end: a Ctrl-C during start-up, or a second one
  // while stopping, must not kill us and leave the children behind.
  let stopping = false
  const stop = new Promise<void>((resolve) => {
    const onSignal = (): void => { stopping = true; resolve() }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  })
  try {
    const started = await start(children, { stateDir, mountpoint, configPath, s3Port: o.s3Port }, () => stopping, stop)
    if (started !== undefined) {
      process.stdout.write(instructions({ mountpoint, stateDir, configPath, ...started }))
      await Promise.race([stop, ...children.map(exited)])
    }
    process.stdout.write('\nstopping: unmounting and shutting the local S3 server down…\n')
  } finally {
    // The daemon first: it unmounts and saves; then the S3 server it may be talking to.
    for (const child of children.reverse()) await stopChild(child)
  }
}

/**
 * Starts the S3 server, then the daemon, then links /data (a failed link is reported, not fatal).
 * Undefined when stopped meanwhile. The daemon is always let reach "ready" first: one stopped while
 * it starts could leave its mount behind.
 */
async function start (children: ChildProcess[], o: { stateDir: string, mountpoint: string, configPath: string, s3Port: number },
  stopping: () => boolean, stop: Promise<void>): Promise<Started | undefined> {
  const s3 = spawn(process.execPath, [path.join(__dirname, '../repo/embedded-s3-main.js'),
    '--directory', path.join(o.stateDir, 's3'), '--port', String(o.s3Port), '--bucket', DEMO_BUCKET],
  { stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(s3)
  const { endpoint } = JSON.parse(await firstLine(s3, 'the local S3 server')) as { endpoint: string }
  if (stopping()) return undefined

  const log = fs.openSync(path.join(o.stateDir, 'daemon.log'), 'a')
  const daemon = spawn(process.execPath, [path.join(__dirname, '../../bin/s3link'), 'mount', DEMO_NAME,
    '--config', o.configPath, '--mountpoint', o.mountpoint], {
    stdio: ['ignore', log, log, 'pipe'],
    env: { ...process.env, S3LINK_READY_FD: '3' }
  })
  fs.closeSync(log)
  children.push(daemon)
  await firstLine(daemon, 'the s3link daemon', 3)
  if (stopping()) return undefined

  // Waiting for the DRA can take up to 20 s: Ctrl-C need not wait for it.
  const link = await Promise.race([linkDemo(socketPath(o.stateDir), DEMO_BUCKET, endpoint).catch((err: Error) => err), stop])
  return link === undefined ? undefined : { endpoint, link }
}

function instructions (o: Started & { mountpoint: string, stateDir: string, configPath: string }): string {
  const data = path.join(o.mountpoint, DEMO_DIR)
  const prefix = `s3://${DEMO_BUCKET}${DEMO_DIR}/`
  return `
s3link demo is running.

  file system   ${o.mountpoint}            (an s3link FUSE mount)
  local S3      ${o.endpoint}   bucket ${DEMO_BUCKET}, keys S3RVER / S3RVER
  ${linkLine(o.link, data)}
  state         ${o.stateDir}   (daemon.log has the daemon's log)

Try, in another terminal:
  cp -a /usr/share/doc/bash ${o.mountpoint}/
  ls -l ${o.mountpoint}/bash && sha256sum ${o.mountpoint}/bash/*
  cd ${o.mountpoint} && git init -q repo && echo hi > repo/hello && git -C repo add hello &&
    git -C repo -c user.name=you -c user.email=you@example.com commit -qm hi && git -C repo log --oneline
  df -h ${o.mountpoint}

The S3 side, with the AWS CLI (plain http, so without AWS_CA_BUNDLE):
  s3 () { env -u AWS_CA_BUNDLE AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER aws s3 "$@" --endpoint-url ${o.endpoint}; }
  s3 ls --recursive ${prefix}

The link as FSx clients see it (s3link serves the FSx API):
  eval "$(${commandName()} credentials ${DEMO_NAME} --config ${o.configPath})"; unset AWS_CA_BUNDLE
  aws fsx describe-data-repository-associations --endpoint-url "$S3LINK_API_URL"

Both directions:
  echo hello > ${data}/hello.txt; sleep 2; s3 ls ${prefix}           # written in ${DEMO_DIR}: exported to the bucket
  echo hi | s3 cp - ${prefix}from-s3.txt; sleep 2; ls -l ${data}/   # put in the bucket: imported into ${DEMO_DIR}

Everything persists: stop with Ctrl-C, run the demo again, and the files are still there.
Press Ctrl-C to stop.
`
}

function linkLine (link: DemoLink | Error, data: string): string {
  if (link instanceof Error) return `not linked    ${data}: ${link.message}`
  const events = (direction: 'AutoImportPolicy' | 'AutoExportPolicy'): string => link.S3?.[direction]?.Events?.join(',') ?? 'none'
  const state = link.Lifecycle === 'AVAILABLE' ? 'AVAILABLE' : `${link.Lifecycle}: ${link.FailureDetails?.Message ?? 'still settling'}`
  return `linked        ${data} ↔ ${link.DataRepositoryPath}   ${link.AssociationId} (${link.created ? 'created' : 'kept'}), ${state}\n` +
    `                auto import ${events('AutoImportPolicy')}, auto export ${events('AutoExportPolicy')}`
}

/** How to run this s3link from a shell: its name if PATH finds this very program, else its path. */
function commandName (): string {
  const self = fs.realpathSync(path.join(__dirname, '../../bin/s3link'))
  for (const dir of (process.env.PATH ?? '').split(':')) {
    try {
      if (fs.realpathSync(path.join(dir, 's3link')) === self) return 's3link'
    } catch {}
  }
  return self
}

/** Waits for the first line a child writes on its stdout (or on fd 3), or fails if it exits first. */
async function firstLine (child: ChildProcess, what: string, fd = 1): Promise<string> {
  const stream = child.stdio[fd] as NodeJS.ReadableStream
  return await new Promise<string>((resolve, reject) => {
    const lines = readline.createInterface({ input: stream })
    lines.once('line', (line) => { lines.close(); resolve(line) })
    child.once('exit', (code) => reject(new UsageError(`${what} exited (code ${code}) before it was ready`)))
  })
}

/** Resolves when the child has exited, also if it already had. */
async function exited (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  await new Promise((resolve) => child.once('exit', resolve))
}

async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const done = exited(child)
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  await done
  clearTimeout(timer)
}
