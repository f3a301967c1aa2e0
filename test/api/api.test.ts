/**
 * The control API over real HTTP against a real daemon: authentication (bearer, bare token, AWS
 * Signature V4 made by the SDK's own signer, and every way to get it wrong), the dashboard's public
 * files, InfinStor's add-mod-del-bucket examples replayed verbatim, validation (each bad field → 400
 * naming it, table unchanged), the body limit, the trusted Unix socket. Ends by grepping the daemon
 * log and every response for the secrets used.
 *
 * Runs the compiled daemon: build first (`npx tsc -p tsconfig.json`; `make test` does).
 */
import t from 'tap'
import fs from 'node:fs'
import http from 'node:http'
import { SignatureV4 } from '@smithy/signature-v4'
import { Sha256 } from '@aws-crypto/sha256-js'
import { startFs, isolatedAwsEnv } from '../fixtures/harness'

const FORM = 'application/x-www-form-urlencoded'
/** Secrets sent in this test: none may appear in a response or the daemon log. */
const SECRETS = ['SECRET-api-test-0123456789', 'SHARED-api-test-9876543210', 'ssss-rotated-secret-value']

t.test('control API', async (t) => {
  const tfs = await startFs(t, { env: isolatedAwsEnv() })
  const url = tfs.apiUrl()
  const admin = tfs.credentials()
  const responses: string[] = []

  async function call (path: string, init: { method?: string, headers?: Record<string, string>, body?: string } = {}): Promise<{ status: number, json: any, text: string, headers: Headers }> {
    const res = await fetch(url + path, { method: init.method ?? (init.body !== undefined ? 'POST' : 'GET'), headers: init.headers, body: init.body })
    const text = await res.text()
    responses.push(text)
    let json: any
    try { json = JSON.parse(text) } catch { json = undefined }
    return { status: res.status, json, text, headers: res.headers }
  }
  const bearer = { authorization: `Bearer ${admin.token}` }
  const form = (body: string): { headers: Record<string, string>, body: string } => ({ headers: { ...bearer, 'content-type': FORM }, body })
  const listing = async (): Promise<unknown> => (await call('/api/buckets', { headers: bearer })).json

  /** A request signed by the AWS SDK's SigV4 signer, sent with fetch. */
  async function signed (path: string, opts: { body?: string, secret?: string, accessKeyId?: string, date?: Date, sendBody?: string } = {}) {
    const u = new URL(url + path)
    const signer = new SignatureV4({
      credentials: { accessKeyId: opts.accessKeyId ?? admin.accessKeyId, secretAccessKey: opts.secret ?? admin.secretAccessKey },
      region: 'us-east-1',
      service: 's3link',
      sha256: Sha256
    })
    const method = opts.body !== undefined ? 'POST' : 'GET'
    const headers: Record<string, string> = { host: u.host }
    if (opts.body !== undefined) headers['content-type'] = FORM
    const req = await signer.sign({ method, protocol: 'http:', hostname: u.hostname, port: Number(u.port), path: u.pathname, query: {}, headers, body: opts.body }, { signingDate: opts.date })
    const sent = { ...req.headers } as Record<string, string>
    delete sent.host // fetch sets the same Host itself
    return await call(path, { method, headers: sent, body: opts.sendBody ?? opts.body })
  }

  t.test('the dashboard is public; everything else needs credentials', async (t) => {
    const page = await call('/')
    t.equal(page.status, 200)
    t.match(page.headers.get('content-type'), /text\/html/)
    t.match(page.text, /<html/)
    t.equal((await call('/dashboard/app.js')).status, 200)
    t.equal((await call('/dashboard/nope.js')).status, 404)
    for (const path of ['/api/buckets', '/api/status', '/nowhere']) {
      const r = await call(path)
      t.equal(r.status, 401, path)
      t.equal(r.json.error, 'Unauthorized')
    }
    const r = await call('/add-mod-del-bucket', { headers: { 'content-type': FORM }, body: 'op=add&bucketname=sneaky' })
    t.equal(r.status, 401)
    t.equal((await call('/api/buckets', { headers: { authorization: 'Bearer wrong-token' } })).status, 401)
    t.equal((await call('/api/buckets', { headers: { authorization: admin.token.slice(0, -1) } })).status, 401)
    t.same(await listing(), { buckets: [] }, 'refused requests changed nothing')
  })

  t.test('bearer token, bare token (InfinStor style), and status', async (t) => {
    const r = await call('/api/status', { headers: bearer })
    t.equal(r.status, 200)
    t.match(r.json, { id: /^fs-[0-9a-f]{17}$/, name: tfs.name, mountpoint: tfs.mountpoint, apiUrl: url })
    t.equal((await call('/api/status', { headers: { authorization: admin.token } })).status, 200)
  })

  t.test('AWS Signature V4 signed by the SDK signer', async (t) => {
    const ok = await signed('/api/status')
    t.equal(ok.status, 200, ok.text)
    const add = await signed('/add-mod-del-bucket', { body: 'op=add&bucketname=sigv4-bucket&cloud=minio' })
    t.equal(add.status, 200, add.text)
    t.equal(add.json.bucket.bucketname, 'sigv4-bucket')
    const before = await listing()

    const wrongSecret = await signed('/add-mod-del-bucket', { body: 'op=delete&bucketname=sigv4-bucket', secret: 'not-the-secret' })
    t.equal(wrongSecret.status, 403)
    t.equal(wrongSecret.json.__type, 'SignatureDoesNotMatch')
    t.equal(wrongSecret.headers.get('x-amzn-errortype'), 'SignatureDoesNotMatch')

    const tampered = await signed('/add-mod-del-bucket', { body: 'op=modify&bucketname=sigv4-bucket&region=eu-west-1', sendBody: 'op=delete&bucketname=sigv4-bucket&region=eu-wes' })
    t.equal(tampered.status, 403, 'a body changed after signing is refused')

    const wrongKey = await signed('/api/buckets', { accessKeyId: 'AKIAWRONGWRONGWRONG1' })
    t.equal(wrongKey.status, 403)
    t.equal(wrongKey.json.__type, 'UnrecognizedClientException')

    const expired = await signed('/api/buckets', { date: new Date(Date.now() - 20 * 60 * 1000) })
    t.equal(expired.status, 403)
    t.equal(expired.json.__type, 'RequestExpired')
    const future = await signed('/api/buckets', { date: new Date(Date.now() + 20 * 60 * 1000) })
    t.equal(future.status, 403)

    const malformed = await call('/api/buckets', { headers: { authorization: 'AWS4-HMAC-SHA256 Credential=x', 'x-amz-date': '20200101T000000Z' } })
    t.equal(malformed.status, 403)
    t.same(await listing(), before, 'refused signed requests changed nothing')
    t.notMatch(wrongSecret.text + expired.text + malformed.text, /at .*\.js|stack/i, 'no stack traces')
  })

  t.test('InfinStor examples, verbatim form bodies', async (t) => {
    const ex1 = await call('/add-mod-del-bucket', form('op=add&bucketname=testb3&endpoint=&accessKeyId=&secretAccessKey=&accessRole=aaaa&accessRoleExt=bbbb'))
    t.equal(ex1.status, 200, ex1.text)
    t.match(ex1.json.bucket, { bucketname: 'testb3', cloud: 'aws', endpoint: '', accessRole: 'aaaa', accessRoleExt: 'bbbb', credentials: 'role', hasSecretAccessKey: false })
    const ex2 = await call('/add-mod-del-bucket', form('op=modify&bucketname=testb3&endpoint=https%3A%2F%2Fminio.isstage1.bb.com%2F'))
    t.equal(ex2.status, 200, ex2.text)
    t.match(ex2.json.bucket, { endpoint: 'https://minio.isstage1.bb.com/', accessRole: 'aaaa', accessRoleExt: 'bbbb' })
    const ex4 = await call('/add-mod-del-bucket', form('op=add&bucketname=testb3&endpoint=&accessKeyId=iiii&secretAccessKey=ssss&accessRole=&accessRoleExt=main'))
    t.equal(ex4.status, 200, ex4.text)
    t.match(ex4.json.bucket, { endpoint: '', accessKeyId: 'iiii', accessRole: '', accessRoleExt: 'main', credentials: 'static', hasSecretAccessKey: true })
    t.notMatch(ex4.text, /ssss/, 'the secret is not echoed')
    const view = await call('/api/buckets/testb3', { headers: bearer })
    t.same(view.json, ex4.json.bucket)
    const ex3 = await call('/add-mod-del-bucket', form('op=delete&bucketname=testb3'))
    t.equal(ex3.status, 200, ex3.text)
    t.equal((await call('/api/buckets/testb3', { headers: bearer })).status, 404)
    t.equal((await call('/add-mod-del-bucket', form('op=delete&bucketname=testb3'))).status, 404)
    t.equal((await call('/add-mod-del-bucket', form('op=modify&bucketname=testb3&endpoint='))).status, 404)
  })

  t.test('each invalid field: 400 naming it, table unchanged', async (t) => {
    const add = await call('/add-mod-del-bucket', form(`op=add&bucketname=valid-one&cloud=minio&endpoint=http%3A%2F%2F127.0.0.1%3A9000&accessKeyId=AKIDVALID&secretAccessKey=${SECRETS[0]}&sharedSecret=${SECRETS[1]}`))
    t.equal(add.status, 200, add.text)
    const roleAdd = await call('/add-mod-del-bucket', form('op=add&bucketname=role-one&accessRole=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr&accessRoleExt=ext'))
    t.equal(roleAdd.status, 200, roleAdd.text)
    const before = await listing()
    const cases: Array<[string, string]> = [
      ['op=frob&bucketname=valid-one', 'op'],
      ['bucketname=valid-one', 'op'],
      ['op=add', 'bucketname'],
      ['op=add&bucketname=Invalid_Name', 'bucketname'],
      ['op=add&bucketname=ab', 'bucketname'],
      ['op=add&bucketname=192.168.1.1', 'bucketname'],
      ['op=add&bucketname=xn--abc', 'bucketname'],
      ['op=add&bucketname=abc-s3alias', 'bucketname'],
      ['op=add&bucketname=a..b', 'bucketname'],
      ['op=add&bucketname=valid-one&accessKeyId=AKID', 'secretAccessKey'],
      ['op=add&bucketname=valid-one&secretAccessKey=zzz', 'accessKeyId'],
      ['op=modify&bucketname=valid-one&secretAccessKey=', 'secretAccessKey'],
      ['op=add&bucketname=valid-one&accessRole=arn%3Aaws%3Aiam%3A%3A12%3Arole%2Fx', 'accessRole'],
      ['op=modify&bucketname=role-one&accessKeyId=AK&secretAccessKey=SK', 'accessRole'],
      ['op=add&bucketname=valid-one&endpoint=ftp%3A%2F%2Fhost', 'endpoint'],
      ['op=modify&bucketname=valid-one&endpoint=nonsense', 'endpoint'],
      ['op=add&bucketname=valid-one&cloud=gcp', 'cloud'],
      ['op=modify&bucketname=valid-one&sse=aws%3Akms', 'kmsKeyId'],
      ['op=modify&bucketname=valid-one&sse=rot13', 'sse'],
      ['op=modify&bucketname=valid-one&pathStyle=maybe', 'pathStyle'],
      ['op=modify&bucketname=valid-one&checksums=NEVER', 'checksums'],
      ['op=add&bucketname=valid-one&colour=blue', 'colour'],
      ['op=add&bucketname=valid-one&region=a&region=b', 'region']
    ]
    for (const [body, field] of cases) {
      const r = await call('/add-mod-del-bucket', form(body))
      t.equal(r.status, 400, body)
      t.match(r.json, { error: 'BadRequest', field, message: String }, body)
    }
    const badJson = await call('/add-mod-del-bucket', { headers: { ...bearer, 'content-type': 'application/json' }, body: `{"op":"add","secretAccessKey":"${SECRETS[2]}"` })
    t.match(badJson, { status: 400, json: { error: 'BadRequest', field: 'body', message: /not valid JSON/ } })
    t.same(await listing(), before, 'no rejected request changed the table')
    for (const path of ['/api/buckets/Not_A_Bucket', '/api/buckets/ab/test']) {
      const r = await call(path, { headers: bearer, method: path.endsWith('/test') ? 'POST' : 'GET' })
      t.equal(r.status, 400, path)
      t.match(r.json, { error: 'BadRequest', field: 'name' })
    }
  })

  t.test('bodies over 1 MiB: 413, table unchanged', async (t) => {
    const before = await listing()
    const big = 'op=add&bucketname=too-big&sharedSecret=' + 'x'.repeat(1100 * 1024)
    const r = await call('/add-mod-del-bucket', form(big))
    t.equal(r.status, 413)
    t.equal(r.json.error, 'PayloadTooLarge')
    t.same(await listing(), before)
  })

  t.test('the Unix socket is root-only and needs no credentials', async (t) => {
    t.equal(fs.statSync(tfs.apiSocket).mode & 0o777, 0o600)
    const body = await new Promise<string>((resolve, reject) => {
      http.get({ socketPath: tfs.apiSocket, path: '/api/buckets' }, (res) => {
        let s = ''
        res.on('data', (c) => { s += c })
        res.on('end', () => resolve(s))
      }).on('error', reject)
    })
    t.match(JSON.parse(body), { buckets: [{ bucketname: 'role-one' }, { bucketname: 'sigv4-bucket' }, { bucketname: 'valid-one' }] })
  })

  t.test('no secret in any response or in the daemon log', async (t) => {
    await tfs.stop()
    const log = tfs.readLog()
    t.match(log, /bucket table changed/, 'the log is the real one')
    for (const secret of [...SECRETS, 'ssss', admin.secretAccessKey, admin.token]) {
      t.notOk(log.includes(secret), `log lacks ${secret.slice(0, 4)}…`)
      t.notOk(responses.some((r) => r.includes(secret)), `responses lack ${secret.slice(0, 4)}…`)
    }
  })
})
