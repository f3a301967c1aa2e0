// The README's first command ends in `s3link demo`: a local S3 server and a mount, no AWS account.
import t from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { CLI, isMounted, sh } from '../fixtures/harness'

async function runDemo (root: string): Promise<{ output: () => string, stop: () => Promise<number | null> }> {
  const child = spawn(process.execPath, [CLI, 'demo', '--mountpoint', path.join(root, 'mnt'),
    '--state-dir', path.join(root, 'state'), '--s3-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => { if (out.includes('Press Ctrl-C')) { clearInterval(timer); resolve() } }, 50)
    void exited.then((code) => { clearInterval(timer); reject(new Error(`demo exited ${code}: ${out}`)) })
  })
  return {
    output: () => out,
    stop: async () => { child.kill('SIGINT'); return await exited }
  }
}

t.test('demo: mounts, serves S3 on loopback, stops cleanly on Ctrl-C, and keeps files for next time', async (t) => {
  const root = await fs.promises.mkdtemp('/tmp/s3link-demo-')
  const mnt = path.join(root, 'mnt')
  let demo = await runDemo(root)
  t.teardown(async () => {
    await demo.stop()
    if (await isMounted(mnt)) await sh(`fusermount -uz ${mnt}`)
    await fs.promises.rm(root, { recursive: true, force: true })
  })
  t.ok(await isMounted(mnt), 'mounted at the printed mountpoint')
  t.match(demo.output(), new RegExp(`file system\\s+${mnt}`))
  const endpoint = /local S3\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(demo.output())?.[1]
  t.ok(endpoint, 'prints the local S3 endpoint')
  const s3 = await sh(`curl -s -o /dev/null -w '%{http_code}' ${endpoint}/s3link-demo`)
  t.not(s3.stdout, '000', 'the S3 server answers on loopback')

  t.equal((await sh(`echo kept > ${mnt}/note && cp -a /usr/share/doc/bash ${mnt}/`)).code, 0)
  t.equal(await demo.stop(), 0, 'Ctrl-C stops the demo with exit 0')
  t.notOk(await isMounted(mnt), 'and unmounts')

  demo = await runDemo(root)
  t.equal((await sh(`cat ${mnt}/note`)).stdout, 'kept\n', 'files persist into the next demo')
})
