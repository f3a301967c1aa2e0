/** The bucket table's pure rules: S3 names, InfinStor add/modify semantics, validation, views. */
import t from 'tap'
import { bucketNameProblem } from '../../src/repo/bucket-name'
import { type BucketEntry, type BucketForm, BucketFieldError, BucketNotFoundError, applyForm, bucketView, resolveSettings } from '../../src/repo/bucket-entry'

/** What fn throws (undefined if it does not). */
function thrown (fn: () => unknown): unknown {
  try { fn() } catch (err) { return err }
  return undefined
}

const form = (f: Partial<BucketForm> & { op: BucketForm['op'] }): BucketForm => ({ bucketname: 'testb3', ...f })

t.test('S3 bucket naming rules', async (t) => {
  for (const ok of ['abc', 'my-bucket.data', 'a'.repeat(63), '1bucket', 'b-1.2']) t.equal(bucketNameProblem(ok), undefined, ok)
  for (const bad of ['ab', 'a'.repeat(64), 'Bucket', 'my_bucket', '-abc', 'abc-', '.abc', 'a..b', '192.168.5.4',
    'xn--abc', 'abc-s3alias', 'abc--ol-s3', 'sthree-x', 'a b c']) {
    t.type(bucketNameProblem(bad), 'string', bad)
  }
})

t.test('add creates a whole entry with defaults; missing cloud is aws (InfinStor example 1)', async (t) => {
  const e = applyForm(undefined, form({ op: 'add', endpoint: '', accessKeyId: '', secretAccessKey: '', accessRole: 'aaaa', accessRoleExt: 'bbbb' }))
  t.equal(e.cloud, 'aws')
  t.match(bucketView(e), { credentials: 'role', accessRole: 'aaaa', accessRoleExt: 'bbbb', pathStyle: false, checksums: 'WHEN_SUPPORTED', region: 'us-east-1', sse: 'none' })
})

t.test('modify changes only the fields sent; add replaces the whole entry (examples 2 and 4)', async (t) => {
  const e1 = applyForm(undefined, form({ op: 'add', accessRole: 'aaaa', accessRoleExt: 'bbbb', sharedSecret: 'shh', region: 'eu-west-1' }))
  const e2 = applyForm(e1, form({ op: 'modify', endpoint: 'https://minio.isstage1.bb.com/' }))
  t.match(e2, { endpoint: 'https://minio.isstage1.bb.com/', accessRole: 'aaaa', sharedSecret: 'shh', region: 'eu-west-1' })
  t.not(e2.generation, e1.generation)
  const e4 = applyForm(e2, form({ op: 'add', endpoint: '', accessKeyId: 'iiii', secretAccessKey: 'ssss', accessRole: '', accessRoleExt: 'main' }))
  t.match(e4, { endpoint: '', accessKeyId: 'iiii', secretAccessKey: 'ssss', accessRole: '', sharedSecret: '', region: undefined })
  t.equal(bucketView(e4).credentials, 'static')
  t.ok(thrown(() => applyForm(undefined, form({ op: 'modify', endpoint: '' }))) instanceof BucketNotFoundError)
})

t.test('defaults follow the cloud unless set', async (t) => {
  const minio = applyForm(undefined, form({ op: 'add', cloud: 'minio' }))
  t.same(resolveSettings(minio), { region: 'us-east-1', pathStyle: true, checksums: 'WHEN_REQUIRED', sse: 'none' })
  const back = applyForm(minio, form({ op: 'modify', cloud: 'aws' }))
  t.match(resolveSettings(back), { pathStyle: false, checksums: 'WHEN_SUPPORTED' })
  const pinned = applyForm(minio, form({ op: 'modify', pathStyle: 'false', checksums: 'WHEN_SUPPORTED' }))
  t.match(resolveSettings(pinned), { pathStyle: false, checksums: 'WHEN_SUPPORTED' })
  t.match(resolveSettings(applyForm(pinned, form({ op: 'modify', pathStyle: '' }))), { pathStyle: true })
})

t.test('each invalid field is named', async (t) => {
  const cases: Array<[Partial<BucketForm>, string]> = [
    [{ bucketname: 'Bad_Name' }, 'bucketname'],
    [{ cloud: 'gcp' }, 'cloud'],
    [{ endpoint: 'ftp://x' }, 'endpoint'],
    [{ endpoint: 'not a url' }, 'endpoint'],
    [{ endpoint: 'https://user:pw@host/' }, 'endpoint'],
    [{ accessKeyId: 'AKID' }, 'secretAccessKey'],
    [{ secretAccessKey: 'sss' }, 'accessKeyId'],
    [{ accessRole: 'arn:aws:iam::12345:role/x' }, 'accessRole'],
    [{ accessRole: 'arn:aws:s3:::bucket' }, 'accessRole'],
    [{ accessRole: 'has space' }, 'accessRole'],
    [{ accessKeyId: 'a', secretAccessKey: 'b', accessRole: 'arn:aws:iam::123456789012:role/r' }, 'accessRole'],
    [{ pathStyle: 'yes' }, 'pathStyle'],
    [{ checksums: 'ALWAYS' }, 'checksums'],
    [{ sse: 'aws:kms' }, 'kmsKeyId'],
    [{ sse: 'DES' }, 'sse'],
    [{ region: 'US East' }, 'region']
  ]
  for (const [fields, field] of cases) {
    const err = thrown(() => applyForm(undefined, form({ op: 'add', ...fields })))
    t.ok(err instanceof BucketFieldError, JSON.stringify(fields))
    t.equal((err as BucketFieldError).field, field, JSON.stringify(fields))
  }
  t.ok(applyForm(undefined, form({ op: 'add', accessRole: 'arn:aws-cn:iam::123456789012:role/path/r', accessRoleExt: 'x' })))
  t.ok(applyForm(undefined, form({ op: 'add', sse: 'aws:kms', kmsKeyId: 'alias/k' })))
})

t.test('the view never carries secrets', async (t) => {
  const e: BucketEntry = applyForm(undefined, form({ op: 'add', accessKeyId: 'AKIDVIEW', secretAccessKey: 'SECRETVIEW', sharedSecret: 'SHAREDVIEW' }))
  const text = JSON.stringify(bucketView(e))
  t.notMatch(text, /SECRETVIEW|SHAREDVIEW/)
  t.match(bucketView(e), { hasSecretAccessKey: true, hasSharedSecret: true, accessKeyId: 'AKIDVIEW' })
})
