// The S3/MinIO event webhook, through the real daemon: notifications for objects put directly into
// the embedded S3 server are applied to the linked directory per the DRA's policy; bad requests are
// refused and change nothing. Listing-based import is off here (one hour), so only events act.
import t from 'tap'
import { PutObjectCommand, DeleteObjectCommand } from '@aws-sdk/client-s3'
import { startFs, startS3, type TestFs } from '../fixtures/harness'
import { aws } from '../fixtures/aws'
import { until, untilEqual } from '../fixtures/until'
import { s3Client } from '../fixtures/s3'

const BUCKET = 'hooked'
const SECRET = 'hook-secret-' + Math.random().toString(36).slice(2)

const s3Record = (key: string, name: string, sequencer: string, minio = false): Record<string, unknown> => ({
  eventVersion: minio ? '2.0' : '2.1',
  eventSource: minio ? 'minio:s3' : 'aws:s3',
  eventTime: new Date().toISOString(),
  eventName: minio ? `s3:${name}` : name,
  s3: { s3SchemaVersion: '1.0', bucket: { name: BUCKET, arn: `arn:aws:s3:::${BUCKET}` }, object: { key, sequencer } }
})

t.test('webhook', async (t) => {
  const s3 = await startS3(t, [BUCKET, 'other-bucket'])
  const c = s3Client(t, s3.endpoint)
  const tfs: TestFs = await startFs(t, { config: { importIntervalMs: 3_600_000 } })
  t.equal((await tfs.cli(['bucket', 'add', BUCKET, '--cloud', 'other', '--endpoint', s3.endpoint, '--access-key-id', 'S3RVER', '--secret-access-key', 'S3RVER', '--shared-secret', SECRET])).code, 0)
  const id = JSON.parse((await tfs.cli(['status', tfs.name, '--json'])).stdout).id
  const created = await aws(tfs, ['fsx', 'create-data-repository-association', '--file-system-id', id, '--file-system-path', '/w', '--data-repository-path', `s3://${BUCKET}/in/`,
    '--s3', 'AutoImportPolicy={Events=[NEW,CHANGED,DELETED]}'])
  t.equal(created.code, 0, created.stderr)
  await until('the DRA is AVAILABLE', async () => (await aws(tfs, ['fsx', 'describe-data-repository-associations'])).json?.Associations[0].Lifecycle === 'AVAILABLE')
  const url = tfs.apiUrl() + '/events/s3'
  const post = async (body: unknown, auth: string | null = `Bearer ${SECRET}`, type = 'application/json'): Promise<{ status: number, json: any }> => {
    const r = await fetch(url, { method: 'POST', headers: { 'content-type': type, ...(auth !== null ? { authorization: auth } : {}) }, body: typeof body === 'string' ? body : JSON.stringify(body) })
    return { status: r.status, json: await r.json().catch(() => undefined) }
  }
  const exists = async (p: string): Promise<boolean> => (await tfs.sh(`test -e '${p}'`)).code === 0

  t.test('refused: wrong or missing secret, admin token, malformed JSON, not a notification, unknown bucket', async (t) => {
    await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'in/refused.txt', Body: 'x' }))
    const event = { Records: [s3Record('in/refused.txt', 'ObjectCreated:Put', '01')] }
    t.match(await post(event, 'Bearer wrong'), { status: 401, json: { error: 'Unauthorized' } }, 'wrong secret')
    t.match(await post(event, null), { status: 401 }, 'no secret')
    t.match(await post(event, `Bearer ${tfs.credentials().token}`), { status: 401 }, 'the admin token is not the bucket\'s secret')
    t.match(await post('{"Records": [', `Bearer ${SECRET}`), { status: 400, json: { message: /not valid JSON/ } })
    t.match(await post({ hello: 'world' }), { status: 400, json: { message: /not an S3 or MinIO event/ } })
    t.match(await post({ Records: [{ ...s3Record('x', 'ObjectCreated:Put', '01'), s3: { bucket: { name: 'not-registered' }, object: { key: 'x' } } }] }), { status: 400, json: { message: /not-registered is not in the bucket table/ } })
    await new Promise((resolve) => setTimeout(resolve, 500))
    t.notOk(await exists('w/refused.txt'), 'nothing was imported')
    const body = await (await fetch(url, { method: 'POST', headers: { authorization: 'Bearer wrong', 'content-type': 'application/json' }, body: JSON.stringify(event) })).text()
    t.notMatch(body + tfs.readLog(), SECRET, 'the secret appears in no reply and no log line')
  })

  t.test('S3 notifications: created, changed, removed; duplicates and the test event are harmless', async (t) => {
    t.match(await post({ Service: 'Amazon S3', Event: 's3:TestEvent', Time: new Date().toISOString(), Bucket: BUCKET, RequestId: 'r', HostId: 'h' }), { status: 200, json: { test: true } })
    await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'in/red flower.jpg', Body: 'petals', Metadata: { 'file-permissions': '0100600', 'file-owner': '1234' } }))
    const put = { Records: [s3Record('in/red+flower.jpg', 'ObjectCreated:Put', '0055AED6DCD90281E5')] }
    t.match(await post(put), { status: 200, json: { queued: 1 } })
    t.match(await post(put), { status: 200 }, 'a duplicate delivery')
    await until('the object is imported', async () => await exists('w/red flower.jpg'))
    t.equal((await tfs.sh('stat -c "%a %u" "w/red flower.jpg"; cat "w/red flower.jpg"')).stdout, '600 1234\npetals')
    await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'in/red flower.jpg', Body: 'new petals' }))
    t.equal((await post({ Records: [s3Record('in/red+flower.jpg', 'ObjectCreated:Put', '0055AED6DCD90281F0')] })).status, 200)
    await untilEqual('the change is imported', async () => (await tfs.sh('cat "w/red flower.jpg"')).stdout, 'new petals')
    await c.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'in/red flower.jpg' }))
    t.equal((await post({ Records: [s3Record('in/red+flower.jpg', 'ObjectRemoved:Delete', '0055AED6DCD9028200')] })).status, 200)
    await until('the deletion is imported', async () => !(await exists('w/red flower.jpg')))
  })

  t.test('MinIO notifications: s3: names, the EventName/Key wrapper, escaped slashes, text/plain', async (t) => {
    await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'in/sub dir/m.txt', Body: 'from minio' }))
    const body = { EventName: 's3:ObjectCreated:Put', Key: `${BUCKET}/in/sub dir/m.txt`, Records: [s3Record('in%2Fsub+dir%2Fm.txt', 'ObjectCreated:Put', '1', true)] }
    t.match(await post(body, SECRET, 'text/plain'), { status: 200, json: { queued: 1 } }, 'the bare secret, as MinIO may send it')
    await untilEqual('imported', async () => (await tfs.sh('cat "w/sub dir/m.txt"')).stdout, 'from minio')
    t.equal((await fetch(url, { method: 'HEAD' })).status, 200, 'MinIO\'s liveness HEAD')
  })

  t.test('events outside the DRA, or for keys that cannot be names, change nothing', async (t) => {
    await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'elsewhere/x.txt', Body: 'x' }))
    t.equal((await post({ Records: [s3Record('elsewhere/x.txt', 'ObjectCreated:Put', '1')] })).status, 200)
    t.equal((await post({ Records: [s3Record('in/a/../b', 'ObjectCreated:Put', '1')] })).status, 200)
    await new Promise((resolve) => setTimeout(resolve, 500))
    t.equal((await tfs.sh('ls w')).stdout.trim(), 'sub dir')
  })

  t.test('metrics', async (t) => {
    const text = await (await fetch(tfs.apiUrl() + '/metrics', { headers: { authorization: `Bearer ${tfs.credentials().token}` } })).text()
    t.match(text, /s3link_import_events_total\{source="webhook",result="received"\} [1-9]/)
    t.match(text, /s3link_import_events_total\{source="queue",result="applied"\} [1-9]/)
    t.match(text, /s3link_import_events_total\{source="queue",result="ignored"\} [1-9]/)
    t.match(text, /s3link_import_oldest_queued_change_age_seconds 0/)
    t.equal((await fetch(tfs.apiUrl() + '/metrics')).status, 401, 'metrics need the admin credentials')
  })
})
