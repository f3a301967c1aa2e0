/**
 * `s3link demo`: the two-minute tour, no AWS account needed. It starts the embedded S3 server and
 * the daemon as child processes (data under the state directory), creates the demo file system on
 * first use, prints what to try, and on Ctrl-C stops both cleanly (unmounting first).
 */
import fs from 'node:fs'
import path from 'node:path'
import readline from 'node:readline'
import { spawn, type ChildProcess } from 'node:child_process'
import { initFileSystem } from '../daemon/init'
import { UsageError } from '../util/errors'

const DEMO_NAME = 'demo'
const DEMO_BUCKET = 's3link-demo'

export interface DemoOptions {
  mountpoint: string
  stateDir: string
  s3Port: number
}

export async function runDemo (o: DemoOptions): Promise<void> {
  const stateDir = path.resolve(o.stateDir)
  const mountpoint = path.resolve(o.mountpoint)
  const configPath = path.join(stateDir, 'demo.yaml')
  if (!fs.existsSync(configPath)) {
    await initFileSystem({ name: DEMO_NAME, mountpoint, stateDir, config: configPath })
  }
  const children: ChildProcess[] = []
  const stopAll = async (): Promise<void> => {
    // The daemon first: it unmounts and saves; then the S3 server it may be talking to.
    for (const child of children.reverse()) await stopChild(child)
  }
  try {
    const s3 = spawn(process.execPath, [path.join(__dirname, '../repo/embedded-s3-main.js'),
      '--directory', path.join(stateDir, 's3'), '--port', String(o.s3Port), '--bucket', DEMO_BUCKET],
    { stdio: ['ignore', 'pipe', 'inherit'] })
    children.push(s3)
    const { endpoint } = JSON.parse(await firstLine(s3, 'the local S3 server')) as { endpoint: string }

    const log = fs.openSync(path.join(stateDir, 'daemon.log'), 'a')
    const daemon = spawn(process.execPath, [path.join(__dirname, '../../bin/s3link'), 'mount', DEMO_NAME,
      '--config', configPath, '--mountpoint', mountpoint], {
      stdio: ['ignore', log, log, 'pipe'],
      env: { ...process.env, S3LINK_READY_FD: '3' }
    })
    fs.closeSync(log)
    children.push(daemon)
    await firstLine(daemon, 'the s3link daemon', 3)

    process.stdout.write(instructions(mountpoint, endpoint, stateDir))
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve)
      process.once('SIGTERM', resolve)
      for (const child of children) child.once('exit', () => resolve())
    })
    process.stdout.write('\nstopping: unmounting and shutting the local S3 server down…\n')
  } finally {
    await stopAll()
  }
}

function instructions (mountpoint: string, endpoint: string, stateDir: string): string {
  return `
s3link demo is running.

  file system   ${mountpoint}            (an s3link FUSE mount)
  local S3      ${endpoint}   bucket ${DEMO_BUCKET}, keys S3RVER / S3RVER
  state         ${stateDir}   (daemon.log has the daemon's log)

Try, in another terminal:
  cp -a /usr/share/doc/bash ${mountpoint}/
  ls -l ${mountpoint}/bash && sha256sum ${mountpoint}/bash/*
  cd ${mountpoint} && git init -q repo && echo hi > repo/hello && git -C repo add hello &&
    git -C repo -c user.name=you -c user.email=you@example.com commit -qm hi && git -C repo log --oneline
  df -h ${mountpoint}

Everything persists: stop with Ctrl-C, run the demo again, and the files are still there.
Press Ctrl-C to stop.
`
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

async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  await exited
  clearTimeout(timer)
}
