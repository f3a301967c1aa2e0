// Automatic import from an SQS queue (issue 5), through the real daemon: the DRA's tag
// s3link:sqs-queue-url names a queue on a loopback SQS server (test/fixtures/sqs-server.ts, which
// checks the SigV4 signatures: the daemon must sign with the bucket's keys and region). Objects
// are put directly into the embedded S3 server and their notifications sent to the queue as S3
// (or SNS) would. Listing-based import is off here (one hour), so only the queue acts.
import t from 'tap'
import { S3Client, PutObjectCommand, DeleteObjectCommand } from '@aws-sdk/client-s3'
import { SQSClient, CreateQueueCommand, DeleteQueueCommand, GetQueueAttributesCommand, SendMessageCommand } from '@aws-sdk/client-sqs'
import { startFs, startS3, type TestFs } from '../fixtures/harness'
import { aws, waitForDra } from '../fixtures/aws'
import { SqsServer } from '../fixtures/sqs-server'
import { until } from '../fixtures/until'

const BUCKET = 'sqs-linked'
const REGION = 'eu-west-1'
const KEYS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

let seq = 0x100
/** An S3 event notification as S3 sends it to SQS: key URL-encoded form style, a growing sequencer. */
const s3Event = (key: string, name: string, bucket = BUCKET): string => JSON.stringify({
  Records: [{
    eventVersion: '2.1',
    eventSource: 'aws:s3',
    awsRegion: REGION,
    eventTime: new Date().toISOString(),
    eventName: name,
    userIdentity: { principalId: 'AWS:AIDAEXAMPLE' },
    requestParameters: { sourceIPAddress: '127.0.0.1' },
    responseElements: { 'x-amz-request-id': 'C3D13FE58DE4C810', 'x-amz-id-2': 'FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD' },
    s3: {
      s3SchemaVersion: '1.0',
      configurationId: 's3link-import',
      bucket: { name: bucket, ownerIdentity: { principalId: 'A3NL1KOZZKExample' }, arn: `arn:aws:s3:::${bucket}` },
      object: { key: encodeURIComponent(key).replace(/%2F/g, '/').replace(/%20/g, '+'), size: 6, sequencer: (seq++).toString(16).toUpperCase().padStart(18, '0') }
    }
  }]
})

/** The same notification delivered through an SNS topic subscribed to the queue (not raw delivery). */
const snsEnvelope = (message: string): string => JSON.stringify({
  Type: 'Notification',
  MessageId: '22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324',
  TopicArn: `arn:aws:sns:${REGION}:123456789012:s3-events`,
  Subject: 'Amazon S3 Notification',
  Message: message,
  Timestamp: new Date().toISOString(),
  SignatureVersion: '1',
  Signature: 'EXAMPLEpH+DcEwjAPg8O9mY8dReBSwksfg2S7WKQcikcNKWLQjwu6A4VbeS0QHVCkhRS7fUQvi2egU3N858fiTDN6bkkOxYDVrY0Ad8L10Hs3zH81mtnPk5uvvolIC1CXGu43obcgFxeL3khZl8IKvO61GWB6jI9b5+gLPoBc1Q=',
  SigningCertURL: `https://sns.${REGION}.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem`,
  UnsubscribeURL: `https://sns.${REGION}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:${REGION}:123456789012:s3-events:c9135db0`
})

t.test('SQS import', async (t) => {
  const sqs = await SqsServer.start({ credentials: KEYS })
  t.teardown(() => sqs.close())
  const q = new SQSClient({ region: REGION, endpoint: sqs.endpoint, credentials: KEYS })
  t.teardown(() => q.destroy())
  const queueUrl = (await q.send(new CreateQueueCommand({ QueueName: 's3-events' }))).QueueUrl as string
  const s3 = await startS3(t, [BUCKET])
  const c = new S3Client({ endpoint: s3.endpoint, region: REGION, forcePathStyle: true, credentials: KEYS, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' })
  t.teardown(() => c.destroy())
  const tfs: TestFs = await startFs(t, { config: { importIntervalMs: 3_600_000 } })
  const add = await tfs.cli(['bucket', 'add', BUCKET, '--cloud', 'other', '--region', REGION, '--endpoint', s3.endpoint, '--access-key-id', KEYS.accessKeyId, '--secret-access-key', KEYS.secretAccessKey])
  t.equal(add.code, 0, add.stderr)
  const fsId = JSON.parse((await tfs.cli(['status', tfs.name, '--json'])).stdout).id
  const created = await aws(tfs, ['fsx', 'create-data-repository-association', '--file-system-id', fsId, '--file-system-path', '/w', '--data-repository-path', `s3://${BUCKET}/in/`,
    '--s3', 'AutoImportPolicy={Events=[NEW,CHANGED,DELETED]}', '--tags', `Key=s3link:sqs-queue-url,Value=${queueUrl}`])
  t.equal(created.code, 0, created.stderr)
  const draId: string = created.json.Association.AssociationId
  await waitForDra(tfs, draId, 'AVAILABLE')

  const send = async (body: string): Promise<string> => (await q.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }))).MessageId as string
  const counts = async (): Promise<{ visible: number, inFlight: number }> => {
    const a = (await q.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['All'] }))).Attributes ?? {}
    return { visible: Number(a.ApproximateNumberOfMessages), inFlight: Number(a.ApproximateNumberOfMessagesNotVisible) }
  }
  const emptied = async (): Promise<void> => { await until('the queue is empty (messages deleted)', async () => { const n = await counts(); return n.visible === 0 && n.inFlight === 0 }) }
  const put = async (key: string, body: string): Promise<void> => { await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body })) }
  const cat = async (p: string): Promise<string | undefined> => { const r = await tfs.sh(`cat '${p}'`); return r.code === 0 ? r.stdout : undefined }
  const exists = async (p: string): Promise<boolean> => (await tfs.sh(`test -e '${p}'`)).code === 0
  const logLines = (text: RegExp): string[] => tfs.readLog().split('\n').filter((l) => text.test(l))

  t.test('an S3 notification: the object appears, the message is deleted; the test event is deleted', async (t) => {
    await send(JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent', Time: new Date().toISOString(), Bucket: BUCKET, RequestId: 'R', HostId: 'H' }))
    await put('in/red flower.jpg', 'petals')
    await send(s3Event('in/red flower.jpg', 'ObjectCreated:Put'))
    await until('the object is imported', async () => await cat('w/red flower.jpg') === 'petals')
    await emptied()
    t.same([...sqs.signedRegions], [REGION], 'signed with the bucket\'s keys (checked by the server) for the bucket\'s region')
    t.match(tfs.readLog(), /polling an SQS queue for S3 events/)
  })

  t.test('an SNS-wrapped notification', async (t) => {
    await put('in/sub dir/via sns.txt', 'from sns')
    await send(snsEnvelope(s3Event('in/sub dir/via sns.txt', 'ObjectCreated:CompleteMultipartUpload')))
    await until('imported', async () => await cat('w/sub dir/via sns.txt') === 'from sns')
    await emptied()
  })

  t.test('malformed messages are logged once and deleted; other buckets are ignored; polling goes on', async (t) => {
    const notJson = await send('this is {not json')
    const notEvent = await send(JSON.stringify({ hello: 'world' }))
    await put('in/elsewhere.txt', 'x')
    await send(s3Event('in/elsewhere.txt', 'ObjectCreated:Put', 'another-bucket'))
    await emptied()
    for (const id of [notJson, notEvent]) t.equal(logLines(/deleting a malformed SQS message/).filter((l) => l.includes(id)).length, 1, `logged once with its MessageId ${id}`)
    t.notOk(await exists('w/elsewhere.txt'), 'an event naming another bucket imports nothing')
    await put('in/after.txt', 'still polling')
    await send(s3Event('in/after.txt', 'ObjectCreated:Put'))
    await until('a good message after them is imported', async () => await cat('w/after.txt') === 'still polling')
  })

  t.test('a removal event removes the file', async (t) => {
    await c.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'in/red flower.jpg' }))
    await send(s3Event('in/red flower.jpg', 'ObjectRemoved:Delete'))
    await until('the file is removed', async () => !(await exists('w/red flower.jpg')))
    await emptied()
  })

  t.test('the queue missing: logged and retried with backoff, not in a tight loop; flows again once it is back', async (t) => {
    await q.send(new DeleteQueueCommand({ QueueUrl: queueUrl }))
    const before = sqs.calls.ReceiveMessage ?? 0
    await sleep(3500)
    const during = (sqs.calls.ReceiveMessage ?? 0) - before
    t.ok(during >= 2 && during <= 4, `retried with backoff: ${during} receives in 3.5 s`)
    t.ok(logLines(/polling the SQS queue failed/).filter((l) => l.includes('QueueDoesNotExist')).length >= 2, 'each failure is logged with its cause')
    t.equal((await q.send(new CreateQueueCommand({ QueueName: 's3-events' }))).QueueUrl, queueUrl)
    await put('in/back.txt', 'queue is back')
    await send(s3Event('in/back.txt', 'ObjectCreated:Put'))
    await until('imported after the queue is back', async () => await cat('w/back.txt') === 'queue is back', 20_000)
    t.match(tfs.readLog(), /the SQS queue answers again/)
  })

  t.test('the SQS server unreachable: logged and retried; messages flow again after it is back', async (t) => {
    const failures = logLines(/polling the SQS queue failed/).length
    await sqs.close()
    await until('the failure is logged', async () => logLines(/polling the SQS queue failed/).length > failures)
    await sleep(2500)
    const logged = logLines(/polling the SQS queue failed/).length - failures
    t.ok(logged >= 1 && logged <= 3, `not a tight loop: ${logged} failures logged in ~3 s`)
    t.match(logLines(/polling the SQS queue failed/).at(-1), /ECONNREFUSED/)
    await sqs.listen()
    await put('in/reconnected.txt', 'server is back')
    await send(s3Event('in/reconnected.txt', 'ObjectCreated:Put'))
    await until('imported after the server is back', async () => await cat('w/reconnected.txt') === 'server is back', 20_000)
    await emptied()
  })

  t.test('untagged (s3link dra update --sqs-queue-url none): polling stops; tagged again: it resumes', async (t) => {
    const untag = await tfs.cli(['dra', 'update', draId, '--sqs-queue-url', 'none'])
    t.equal(untag.code, 0, untag.stderr)
    t.notMatch(untag.stdout, /sqs:/)
    await until('polling stopped', async () => /stopped polling an SQS queue/.test(tfs.readLog()))
    await put('in/later.txt', 'waited in SQS')
    await send(s3Event('in/later.txt', 'ObjectCreated:Put'))
    await sleep(1500)
    t.same(await counts(), { visible: 1, inFlight: 0 }, 'the message waits in the queue')
    t.notOk(await exists('w/later.txt'))
    const tag = await tfs.cli(['dra', 'update', draId, '--sqs-queue-url', queueUrl])
    t.equal(tag.code, 0, tag.stderr)
    t.match(tag.stdout, `sqs:      ${queueUrl}`)
    await until('imported once tagged again', async () => await cat('w/later.txt') === 'waited in SQS')
    await emptied()
    t.equal((await tfs.cli(['dra', 'update', draId, '--sqs-queue-url', 'ftp://example/q'])).code, 1, 'a URL that is not a queue URL is refused by the CLI')
  })

  t.test('the daemon stops promptly during a long poll, and polls again after a restart', async (t) => {
    const started = Date.now()
    t.equal(await tfs.stop(), 0)
    t.ok(Date.now() - started < 10_000, `stopped in ${Date.now() - started} ms`)
    await put('in/while-down.txt', 'queued while stopped')
    await send(s3Event('in/while-down.txt', 'ObjectCreated:Put'))
    await tfs.mount()
    await until('imported after the restart', async () => await cat('w/while-down.txt') === 'queued while stopped')
    await emptied()
  })

  t.test('deleting the DRA stops polling', async (t) => {
    const stops = logLines(/stopped polling an SQS queue/).length
    const deleted = await aws(tfs, ['fsx', 'delete-data-repository-association', '--association-id', draId, '--no-delete-data-in-file-system'])
    t.equal(deleted.code, 0, deleted.stderr)
    await waitForDra(tfs, draId, undefined)
    await until('polling stopped', async () => logLines(/stopped polling an SQS queue/).length > stops)
    const receives = sqs.calls.ReceiveMessage ?? 0
    await send(s3Event('in/after.txt', 'ObjectCreated:Put'))
    await sleep(1500)
    t.equal(sqs.calls.ReceiveMessage ?? 0, receives, 'no receive since')
    t.same(await counts(), { visible: 1, inFlight: 0 }, 'the message stays in the queue')
  })
})
