/**
 * Buckets end to end: the `s3link bucket` CLI over the Unix socket against a real daemon, `bucket
 * test` against the embedded S3 server (s3rver) and a loopback STS, then a grep of the daemon log
 * and of every CLI output for each secret used.
 *
 * s3rver knows one access key id, S3RVER, and refuses others (403 InvalidAccessKeyId), but it does
 * not verify V4 signatures, so a wrong *secret* cannot be shown against it: the failures shown are a
 * wrong key id, a missing bucket and an endpoint that does not answer. Secrets used with S3RVER are
 * therefore unique strings, which the final grep looks for. Role assumption is shown by the STS
 * fixture's record of AssumeRole calls (role ARN, external id, the default-chain key that signed).
 *
 * Runs the compiled daemon and S3 server: build first (`npx tsc -p tsconfig.json`; `make test` does).
 */
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { startFs, startS3, isolatedAwsEnv, cli, type RunResult } from '../fixtures/harness'
import { startSts } from '../fixtures/sts'

const BUCKET = 'data'
const STATIC_SECRET = 'STATIC-secret-for-cli-test-4242'
const SHARED_SECRET = 'SHARED-webhook-secret-7777'
const DEFAULT_SECRET = 'DEFAULT-chain-secret-5555'
const ROLE = 'arn:aws:iam::123456789012:role/s3link-test'

t.test('bucket CLI, bucket test, role assumption, no secrets anywhere', async (t) => {
  const s3 = await startS3(t, [BUCKET])
  const sts = await startSts(t)
  sts.issueAccessKeyId = 'S3RVER'
  const tfs = await startFs(t, {
    env: {
      ...isolatedAwsEnv({ accessKeyId: 'S3RVER', secretAccessKey: DEFAULT_SECRET }),
      S3LINK_STS_ENDPOINT: sts.endpoint,
      // A bucket not in the table uses the default chain and endpoint; point that endpoint at s3rver.
      AWS_ENDPOINT_URL_S3: s3.endpoint
    }
  })
  const outputs: RunResult[] = []
  const s3link = async (args: string[], input?: string): Promise<RunResult> => {
    const r = await tfs.cli(args, { input })
    outputs.push(r)
    return r
  }
  const json = (r: RunResult): any => JSON.parse(r.stdout)

  t.test('add (secret from stdin), list, show, modify, test, delete', async (t) => {
    const add = await s3link(['bucket', 'add', BUCKET, '--cloud', 'minio', '--endpoint', s3.endpoint, '--access-key-id', 'S3RVER',
      '--secret-access-key', '-', '--shared-secret', SHARED_SECRET], STATIC_SECRET + '\n')
    t.equal(add.code, 0, add.stderr)
    t.match(add.stdout, /added bucket data/)
    t.match(add.stdout, /secret key:\s+set/)

    const list = await s3link(['bucket', 'list'])
    t.equal(list.code, 0, list.stderr)
    t.match(list.stdout, /NAME\s+CLOUD\s+CREDENTIALS[\s\S]*data\s+minio\s+static/)

    const show = json(await s3link(['bucket', 'show', BUCKET, '--json']))
    t.match(show, { bucketname: BUCKET, cloud: 'minio', endpoint: s3.endpoint, pathStyle: true, checksums: 'WHEN_REQUIRED', credentials: 'static', accessKeyId: 'S3RVER', hasSecretAccessKey: true, hasSharedSecret: true })

    const mod = await s3link(['bucket', 'modify', BUCKET, '--region', 'eu-west-1', '--json'])
    t.equal(mod.code, 0, mod.stderr)
    t.match(json(mod), { region: 'eu-west-1', accessKeyId: 'S3RVER', hasSecretAccessKey: true, hasSharedSecret: true })

    const test = await s3link(['bucket', 'test', BUCKET, '--json'])
    t.equal(test.code, 0, test.stderr)
    const r = json(test)
    t.match(r, { bucketname: BUCKET, reachable: true, authorized: true, exists: true, credentials: 'static' })
    t.ok(typeof r.latencyMs === 'number' && r.latencyMs > 0 && r.latencyMs < 5000, `latency ${r.latencyMs} ms`)
    t.match((await s3link(['bucket', 'test', BUCKET])).stdout, /data: reachable, authorized \(static credentials\), HeadBucket [\d.]+ ms/)

    t.equal((await s3link(['bucket', 'modify', BUCKET, '--access-key-id', 'AKIDWRONG'])).code, 0)
    const wrong = await s3link(['bucket', 'test', BUCKET, '--json'])
    t.equal(wrong.code, 1)
    t.match(json(wrong), { reachable: true, authorized: false, error: /access denied.*403 InvalidAccessKeyId/ })
    t.match(wrong.stderr, /bucket test failed: access denied/)

    const bad = await s3link(['bucket', 'modify', BUCKET, '--access-role', 'not an arn'])
    t.equal(bad.code, 1)
    t.match(bad.stderr, /^s3link: accessRole: must be an IAM role ARN/)

    const del = await s3link(['bucket', 'delete', BUCKET])
    t.equal(del.code, 0, del.stderr)
    t.match((await s3link(['bucket', 'list'])).stdout, /no buckets registered/)
    const gone = await s3link(['bucket', 'show', BUCKET])
    t.equal(gone.code, 1)
    t.match(gone.stderr, /bucket data is not in the bucket table/)
  })

  t.test('a missing bucket and an endpoint that does not answer are reported clearly', async (t) => {
    t.equal((await s3link(['bucket', 'add', 'nosuch', '--cloud', 'minio', '--endpoint', s3.endpoint, '--access-key-id', 'S3RVER', '--secret-access-key', '-'], STATIC_SECRET)).code, 0)
    const missing = await s3link(['bucket', 'test', 'nosuch', '--json'])
    t.equal(missing.code, 1)
    t.match(json(missing), { reachable: true, authorized: false, exists: false, error: /bucket nosuch does not exist at this endpoint/ })
    t.match(missing.stderr, /bucket test failed: bucket nosuch does not exist/)

    t.equal((await s3link(['bucket', 'add', 'down', '--cloud', 'other', '--endpoint', 'http://127.0.0.1:1'])).code, 0)
    const down = await s3link(['bucket', 'test', 'down', '--json'])
    t.equal(down.code, 1)
    t.match(json(down), { reachable: false, authorized: false, error: /cannot reach the endpoint \(ECONNREFUSED\)/ })
  })

  t.test('a bucket not in the table uses the default credential chain', async (t) => {
    const r = await s3link(['bucket', 'test', BUCKET, '--json'])
    t.equal(r.code, 0, r.stdout + r.stderr)
    t.match(json(r), { reachable: true, authorized: true, credentials: 'default' })
  })

  t.test('a role is assumed through STS with its external id, reused, and renewed before expiry', async (t) => {
    const add = await s3link(['bucket', 'add', BUCKET, '--cloud', 'minio', '--endpoint', s3.endpoint, '--access-role', ROLE, '--access-role-ext', 'ext-123'])
    t.equal(add.code, 0, add.stderr)
    const first = await s3link(['bucket', 'test', BUCKET, '--json'])
    t.equal(first.code, 0, first.stdout + first.stderr)
    t.match(json(first), { authorized: true, credentials: 'role' })
    t.equal(sts.calls.length, 1)
    t.match(sts.calls[0], { params: { Action: 'AssumeRole', RoleArn: ROLE, ExternalId: 'ext-123', RoleSessionName: /^s3link-fs-/ }, signedBy: 'S3RVER' })
    t.equal((await s3link(['bucket', 'test', BUCKET])).code, 0)
    t.equal(sts.calls.length, 1, 'valid credentials are reused')

    // A changed entry rebuilds the client, which assumes the role again with the new external id.
    // Credentials now expire after 2 minutes: inside the SDK's 5-minute refresh window, so they are
    // renewed before every use instead of being used up to their expiry.
    sts.ttlSeconds = 120
    t.equal((await s3link(['bucket', 'modify', BUCKET, '--access-role-ext', 'ext-456'])).code, 0)
    t.equal((await s3link(['bucket', 'test', BUCKET])).code, 0)
    const afterModify = sts.calls.length
    t.ok(afterModify >= 2)
    t.ok(sts.calls.slice(1).every((c) => c.params.ExternalId === 'ext-456'), 'the new external id is used')
    t.equal((await s3link(['bucket', 'test', BUCKET])).code, 0)
    t.ok(sts.calls.length > afterModify, 'credentials expiring within 5 minutes are renewed before use')
  })

  t.test('status shows the id and the API URL', async (t) => {
    const r = await s3link(['status', tfs.name])
    t.equal(r.code, 0, r.stderr)
    t.match(r.stdout, new RegExp(`${tfs.name} \\(fs-[0-9a-f]{17}\\): mounted[\\s\\S]*API:\\s+${tfs.apiUrl()}`))
  })

  t.test('--fs: the only configured file system, or an error naming the choices', async (t) => {
    const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 's3link-cfg-'))
    t.teardown(() => fs.promises.rm(dir, { recursive: true, force: true }))
    await fs.promises.copyFile(tfs.configPath, path.join(dir, `${tfs.name}.yaml`))
    const only = await cli(['bucket', 'list', '--json'], { S3LINK_CONFIG_DIR: dir })
    outputs.push(only)
    t.equal(only.code, 0, only.stderr)
    await fs.promises.writeFile(path.join(dir, 'other.yaml'), 'name: other\n')
    const two = await cli(['bucket', 'list'], { S3LINK_CONFIG_DIR: dir })
    t.equal(two.code, 1)
    t.match(two.stderr, /several file systems .*choose one with --fs NAME/)
    const named = await cli(['bucket', 'list', '--fs', tfs.name], { S3LINK_CONFIG_DIR: dir })
    t.equal(named.code, 0, named.stderr)
  })

  t.test('no secret in the daemon log or any CLI output', async (t) => {
    await tfs.stop()
    const log = tfs.readLog()
    t.match(log, /bucket tested/)
    const admin = tfs.credentials()
    const secrets = [STATIC_SECRET, SHARED_SECRET, DEFAULT_SECRET, admin.secretAccessKey, admin.token, ...sts.issued]
    const printed = outputs.map((o) => o.stdout + o.stderr).join('\n')
    for (const secret of secrets) {
      t.notOk(log.includes(secret), `log lacks ${secret.slice(0, 6)}…`)
      t.notOk(printed.includes(secret), `CLI output lacks ${secret.slice(0, 6)}…`)
    }
    t.equal(fs.statSync(path.join(tfs.stateDir, 'credentials.json')).mode & 0o777, 0o600)
    t.equal(fs.statSync(path.join(tfs.stateDir, 'db')).mode & 0o777, 0o700)
  })
})
