// The README's first command ends in `s3link demo`: a local S3 server, a mount, and /data linked to
// the local bucket by a DRA, no AWS account.
import t from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { CLI, isMounted, sh, run } from '../fixtures/harness'
import { AWS_CLI } from '../fixtures/aws'
import { callApiOk, callFsx } from '../../src/api/client'

interface Demo { output: () => string, stop: () => Promise<number | null> }

async function runDemo (root: string, started: (demo: Demo) => void): Promise<Demo> {
  const child = spawn(process.execPath, [CLI, 'demo', '--mountpoint', path.join(root, 'mnt'),
    '--state-dir', path.join(root, 'state'), '--s3-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const demo = {
    output: () => out,
    stop: async () => { child.kill('SIGINT'); return await exited }
  }
  // Handed out before it is ready, so that teardown stops it even if it never gets there.
  started(demo)
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => { if (out.includes('Press Ctrl-C')) { clearInterval(timer); resolve() } }, 50)
    void exited.then((code) => { clearInterval(timer); reject(new Error(`demo exited ${code}: ${out}`)) })
  })
  return demo
}

interface Association { AssociationId: string, Lifecycle: string, FileSystemPath: string, DataRepositoryPath: string, S3?: unknown }

const describe = async (socket: string): Promise<Association[]> =>
  (await callFsx(socket, 'DescribeDataRepositoryAssociations', {}) as { Associations: Association[] }).Associations

/** Runs lines the demo printed, in bash, with no AWS settings but what those lines set. */
async function shPrinted (script: string): Promise<{ code: number, stdout: string, stderr: string }> {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AWS_')) env[k] = v
  Object.assign(env, {
    AWS_CONFIG_FILE: '/nonexistent/aws-config',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_PAGER: '',
    AWS_MAX_ATTEMPTS: '1',
    // The CA bundle the printed lines are meant to cope with.
    AWS_CA_BUNDLE: '/etc/ssl/certs/ca-certificates.crt',
    PATH: AWS_CLI.startsWith('/') ? `${path.dirname(AWS_CLI)}:${process.env.PATH ?? ''}` : process.env.PATH
  })
  return await run('bash', ['-c', script], { env, timeoutMs: 60_000 })
}

const printedLine = (output: string, start: string): string => output.split('\n').map((l) => l.trim()).find((l) => l.startsWith(start)) ?? `false # no line ${start}`

t.test('demo: mounts, links /data to the local bucket, stops cleanly on Ctrl-C, and keeps files and link for next time', async (t) => {
  const root = await fs.promises.mkdtemp('/tmp/s3link-demo-')
  const mnt = path.join(root, 'mnt')
  const socket = path.join(root, 'state', 'api.sock')
  let demo: Demo | undefined
  t.teardown(async () => {
    await demo?.stop()
    if (await isMounted(mnt)) await sh(`fusermount -uz ${mnt}`)
    // Anything still running from this demo (its S3 server, its daemon) names the unique root.
    for (const pid of (await run('pgrep', ['-f', root])).stdout.split('\n').filter((p) => p !== '')) process.kill(Number(pid), 'SIGKILL')
    await fs.promises.rm(root, { recursive: true, force: true })
  })
  demo = await runDemo(root, (d) => { demo = d })
  t.ok(await isMounted(mnt), 'mounted at the printed mountpoint')
  t.match(demo.output(), new RegExp(`file system\\s+${mnt}`))
  const endpoint = /local S3\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(demo.output())?.[1]
  t.ok(endpoint, 'prints the local S3 endpoint')
  const s3 = await sh(`curl -s -o /dev/null -w '%{http_code}' ${endpoint}/s3link-demo`)
  t.not(s3.stdout, '000', 'the S3 server answers on loopback')

  // The link, as the API sees it.
  const first = await describe(socket)
  t.equal(first.length, 1, 'one DRA')
  t.match(first[0], {
    AssociationId: /^dra-[0-9a-f]{17}$/,
    Lifecycle: 'AVAILABLE',
    FileSystemPath: '/data',
    DataRepositoryPath: 's3://s3link-demo/data/',
    S3: { AutoImportPolicy: { Events: ['NEW', 'CHANGED', 'DELETED'] }, AutoExportPolicy: { Events: ['NEW', 'CHANGED', 'DELETED'] } }
  }, '/data ↔ s3://s3link-demo/data/, AVAILABLE, automatic import and export of every event')
  t.match(demo.output(), new RegExp(`linked\\s+${mnt}/data ↔ s3://s3link-demo/data/\\s+${first[0].AssociationId} \\(created\\), AVAILABLE`), 'and says so')
  t.equal((await sh(`test -d ${mnt}/data`)).code, 0, '/data is a directory in the mount')
  t.match(await callApiOk(socket, 'GET', '/api/buckets/s3link-demo'), { bucketname: 's3link-demo', cloud: 'other', endpoint, accessKeyId: 'S3RVER', hasSecretAccessKey: true },
    'the local S3 server is in the bucket table')

  // The printed AWS CLI lines work as printed.
  const s3fn = printedLine(demo.output(), 's3 () {')
  const put = await shPrinted(`${s3fn}\necho hi | s3 cp - s3://s3link-demo/probe.txt && s3 ls s3://s3link-demo/probe.txt`)
  t.match(put, { code: 0, stdout: /probe\.txt/ }, 'the printed s3 function reaches the local bucket')
  const fsx = await shPrinted(`${printedLine(demo.output(), 'eval "$(')}\n${printedLine(demo.output(), 'aws fsx describe-data-repository-associations')}`)
  t.equal(fsx.code, 0, 'the printed aws fsx lines run', { stderr: fsx.stderr })
  t.same((JSON.parse(fsx.stdout === '' ? '{}' : fsx.stdout) as { Associations?: Association[] }).Associations?.map((a) => a.AssociationId), [first[0].AssociationId],
    'and list the DRA')

  // Both directions, as the printed lines suggest (with more patience than their sleep 2).
  const both = async (check: () => Promise<boolean>): Promise<boolean> => {
    for (let i = 0; i < 100; i++, await new Promise((resolve) => setTimeout(resolve, 200))) if (await check()) return true
    return false
  }
  t.equal((await sh(`echo hello > ${mnt}/data/hello.txt`)).code, 0)
  t.ok(await both(async () => /hello\.txt/.test((await shPrinted(`${s3fn}\ns3 ls s3://s3link-demo/data/`)).stdout)), 'a file written in /data is exported to the bucket')
  t.equal((await shPrinted(`${s3fn}\necho hi | s3 cp - s3://s3link-demo/data/from-s3.txt`)).code, 0)
  t.ok(await both(async () => (await sh(`cat ${mnt}/data/from-s3.txt`)).stdout === 'hi\n'), 'an object put in the bucket is imported into /data')

  t.equal((await sh(`echo kept > ${mnt}/note && cp -a /usr/share/doc/bash ${mnt}/`)).code, 0, 'files written into the mount')
  t.equal(await demo.stop(), 0, 'Ctrl-C stops the demo with exit 0')
  t.notOk(await isMounted(mnt), 'and unmounts')

  // A second run on the same state: the S3 port changes (port 0), the DRA stays the same one.
  demo = await runDemo(root, (d) => { demo = d })
  t.equal((await sh(`cat ${mnt}/note`)).stdout, 'kept\n', 'files persist into the next demo')
  const endpoint2 = /local S3\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(demo.output())?.[1]
  t.match(await callApiOk(socket, 'GET', '/api/buckets/s3link-demo'), { endpoint: endpoint2 }, 'the bucket is registered again with this run\'s endpoint')
  t.match(await describe(socket), [{ AssociationId: first[0].AssociationId, Lifecycle: 'AVAILABLE' }], 'the DRA is kept, not duplicated')
  t.equal((await describe(socket)).length, 1, 'still one DRA')
  t.match(demo.output(), new RegExp(`${first[0].AssociationId} \\(kept\\), AVAILABLE`), 'and says it was kept')

  t.equal(await demo.stop(), 0, 'the second run stops with exit 0 too')
  t.notOk(await isMounted(mnt), 'unmounted at the end')
  t.equal((await run('pgrep', ['-af', root])).stdout, '', 'no process of the demo is left')
})
