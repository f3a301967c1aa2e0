/**
 * The FSx wire protocol over raw HTTP (spec/fsx-dra.md §2, §8): what the AWS CLI cannot send.
 * Malformed JSON, a body that is not an object, a missing or unknown X-Amz-Target, unsigned and
 * wrongly signed requests, unknown fields and each invalid field: every one gets the awsJson error
 * shape `{ __type, Message }` with the same name in x-amzn-errortype, and changes nothing
 * (Describe answers the same and no directory appears in the mount).
 *
 * Requests are signed with the AWS SDK's own SigV4 signer, for the `fsx` service.
 * Runs the compiled daemon: build first (`npx tsc -p tsconfig.json`; `make test` does).
 */
import t, { type Test } from 'tap'
import { SignatureV4 } from '@smithy/signature-v4'
import { Sha256 } from '@aws-crypto/sha256-js'
import { startFs, isolatedAwsEnv } from '../fixtures/harness'
import { describeAll, fsx, waitForDra } from '../fixtures/aws'

const TARGET = 'AWSSimbaAPIService_v20180301.'
const JSON_TYPE = 'application/x-amz-json-1.1'

interface Reply { status: number, json: any, text: string, headers: Headers }

t.test('FSx protocol', async (t) => {
  const tfs = await startFs(t, { env: isolatedAwsEnv() })
  const url = tfs.apiUrl()
  const admin = tfs.credentials()
  const fsId = JSON.parse((await tfs.cli(['status', tfs.name, '--json'])).stdout).id as string

  /** POST / signed by the SDK's signer; `send` replaces the body after signing, `headers` are added unsigned. */
  async function post (opts: { target?: string, body?: string, secret?: string, accessKeyId?: string, sign?: boolean, send?: string, contentType?: string, headers?: Record<string, string> }): Promise<Reply> {
    const u = new URL(url)
    const body = opts.body ?? '{}'
    let headers: Record<string, string> = { host: u.host, 'content-type': opts.contentType ?? JSON_TYPE }
    if (opts.target !== undefined) headers['x-amz-target'] = opts.target
    if (opts.sign !== false) {
      const signer = new SignatureV4({
        credentials: { accessKeyId: opts.accessKeyId ?? admin.accessKeyId, secretAccessKey: opts.secret ?? admin.secretAccessKey },
        region: 'us-east-1',
        service: 'fsx',
        sha256: Sha256
      })
      const req = await signer.sign({ method: 'POST', protocol: 'http:', hostname: u.hostname, port: Number(u.port), path: '/', query: {}, headers, body })
      headers = { ...req.headers } as Record<string, string>
    }
    delete headers.host // fetch sets the same Host itself
    const res = await fetch(url + '/', { method: 'POST', headers: { ...headers, ...opts.headers }, body: opts.send ?? body })
    const text = await res.text()
    let json: any
    try { json = JSON.parse(text) } catch { json = undefined }
    return { status: res.status, json, text, headers: res.headers }
  }
  const call = async (operation: string, input: unknown): Promise<Reply> => await post({ target: TARGET + operation, body: JSON.stringify(input) })

  /** The reply is the awsJson error `type` (body and header), with a message matching. */
  function isError (t: Test, r: Reply, status: number, type: string, message: RegExp, what = type): void {
    t.equal(r.status, status, `${what}: HTTP ${status}`)
    t.equal(r.json?.__type, type, `${what}: __type ${type} (${r.text})`)
    t.equal(r.headers.get('x-amzn-errortype'), type, `${what}: x-amzn-errortype`)
    t.match(r.headers.get('content-type'), /application\/x-amz-json-1\.1/, `${what}: awsJson content type`)
    t.match(r.json?.Message, message, `${what}: Message says what is wrong`)
  }

  // One association to see unchanged, and a file system tree to see no directory appear in.
  const created = await fsx(tfs, 'CreateDataRepositoryAssociation', { FileSystemId: fsId, FileSystemPath: '/ns1', DataRepositoryPath: 's3://unregistered-bucket/p/', ClientRequestToken: 'first' })
  t.equal(created.status, 200)
  const id = created.body.Association.AssociationId as string
  // Not in the bucket table: the default credential chain, which has nothing in this environment.
  const settled = await waitForDra(tfs, id, 'MISCONFIGURED')
  t.match(settled.FailureDetails.Message, /^cannot use the S3 bucket unregistered-bucket: no usable credentials/, 'a bucket not in the table uses the default credential chain')
  const snapshot = async (): Promise<string> => JSON.stringify(await describeAll(tfs)) + '\n' + (await tfs.sh('find . | sort')).stdout
  const before = await snapshot()

  t.test('a signed request is served', async (t) => {
    const r = await call('DescribeDataRepositoryAssociations', {})
    t.equal(r.status, 200)
    t.match(r.headers.get('content-type'), /^application\/x-amz-json-1\.1/)
    t.match(r.json, { Associations: [{ AssociationId: id, FileSystemId: fsId, Lifecycle: 'MISCONFIGURED' }] })
    const empty = await post({ target: TARGET + 'DescribeDataRepositoryAssociations', body: '' })
    t.equal(empty.status, 200, 'an empty body is an empty input')
    const fsys = await call('DescribeFileSystems', { FileSystemIds: [fsId] })
    t.match(fsys.json, { FileSystems: [{ FileSystemId: fsId, FileSystemType: 'LUSTRE', Lifecycle: 'AVAILABLE' }] })
  })

  t.test('body, target and content type', async (t) => {
    const describe = TARGET + 'DescribeDataRepositoryAssociations'
    isError(t, await post({ target: describe, body: '{"AssociationIds": [' }), 400, 'SerializationException', /not valid JSON/, 'malformed JSON')
    isError(t, await post({ target: describe, body: '{"a":1}}' }), 400, 'SerializationException', /not valid JSON/, 'trailing garbage')
    for (const body of ['[]', '"text"', 'null', '42', 'true']) {
      isError(t, await post({ target: describe, body }), 400, 'SerializationException', /must be a JSON object/, `body ${body}`)
    }
    isError(t, await post({ body: '{}' }), 400, 'UnknownOperationException', /X-Amz-Target is missing/, 'no target')
    isError(t, await post({ target: TARGET + 'CreateFileSystem' }), 400, 'UnknownOperationException', /AWSSimbaAPIService_v20180301\.CreateFileSystem is not an operation s3link serves/, 'an FSx operation not served')
    isError(t, await post({ target: TARGET + 'toString' }), 400, 'UnknownOperationException', /not an operation/, 'a property of every object')
    isError(t, await post({ target: 'AmazonS3.DescribeDataRepositoryAssociations' }), 400, 'UnknownOperationException', /not an operation/, 'another service\'s prefix')
    isError(t, await post({ target: describe, contentType: 'text/plain' }), 400, 'SerializationException', /content type text\/plain is not accepted/, 'text/plain')
    isError(t, await post({ target: describe, contentType: 'application/x-www-form-urlencoded', body: 'MaxResults=1' }), 400, 'SerializationException', /content type application\/x-www-form-urlencoded is not accepted/, 'a form')
    t.equal((await post({ target: describe, contentType: 'application/json' })).status, 200, 'plain JSON is read too')
    const huge = JSON.stringify({ AssociationIds: ['x'.repeat(1024 * 1024)] })
    isError(t, await post({ target: describe, body: huge }), 413, 'RequestEntityTooLargeException', /larger than 1048576 bytes/, 'a body over 1 MiB')
  })

  t.test('authentication', async (t) => {
    const describe = TARGET + 'DescribeDataRepositoryAssociations'
    isError(t, await post({ target: describe, sign: false }), 403, 'MissingAuthenticationTokenException', /authentication required/, 'unsigned')
    isError(t, await post({ target: describe, secret: 'not-the-secret' }), 403, 'SignatureDoesNotMatch', /signature does not match/, 'wrong secret')
    isError(t, await post({ target: describe, accessKeyId: 'AKIAWRONGWRONGWRONG0' }), 403, 'UnrecognizedClientException', /not this file system's admin key/, 'wrong access key id')
    const create = { FileSystemId: fsId, FileSystemPath: '/sneaky', DataRepositoryPath: 's3://bucket/sneaky/' }
    isError(t, await post({ target: TARGET + 'CreateDataRepositoryAssociation', body: JSON.stringify(create), send: JSON.stringify({ ...create, FileSystemPath: '/other' }) }),
      403, 'SignatureDoesNotMatch', /SHA-256 of the body|signature does not match/, 'body changed after signing')
    isError(t, await post({ target: TARGET + 'CreateDataRepositoryAssociation', body: JSON.stringify(create), sign: false }), 403, 'MissingAuthenticationTokenException', /authentication required/, 'unsigned create')
    isError(t, await post({ target: describe, sign: false, headers: { authorization: 'AWS4-HMAC-SHA256 Credential=x' } }), 403, 'IncompleteSignatureException', /not a complete AWS Signature V4/, 'a broken Authorization header')
    isError(t, await post({ target: describe, sign: false, headers: { authorization: 'Bearer wrong-token' } }), 403, 'UnrecognizedClientException', /not this file system's admin token/, 'a wrong bearer token')
    t.equal(await snapshot(), before, 'nothing changed')
  })

  t.test('each invalid field → BadRequest naming it, nothing changed', async (t) => {
    const base = { FileSystemId: fsId, FileSystemPath: '/ns2', DataRepositoryPath: 's3://bucket/ns2/' }
    const cases: Array<[string, string, object, string, RegExp]> = [
      ['Create', 'unknown field', { ...base, Bogus: 1 }, 'BadRequest', /^Bogus: not a parameter of this operation$/],
      ['Create', 'misspelt field', { ...base, FilesystemPath: '/x' }, 'BadRequest', /FilesystemPath: not a parameter/],
      ['Create', 'FileSystemId missing', { FileSystemPath: '/ns2', DataRepositoryPath: 's3://bucket/ns2/' }, 'BadRequest', /^FileSystemId: is required$/],
      ['Create', 'FileSystemId not fs-hex', { ...base, FileSystemId: 'fs-zzzzzzzzzzzzzzzzz' }, 'BadRequest', /^FileSystemId: must be fs- followed by hex digits$/],
      ['Create', 'FileSystemId a number', { ...base, FileSystemId: 12 }, 'BadRequest', /^FileSystemId: Expected string, received number$/],
      ['Create', 'another file system', { ...base, FileSystemId: 'fs-00000000000000000' }, 'FileSystemNotFound', /fs-00000000000000000 does not exist here/],
      ['Create', 'FileSystemPath missing', { FileSystemId: fsId, DataRepositoryPath: 's3://bucket/ns2/' }, 'BadRequest', /FileSystemPath is required/],
      ['Create', 'FileSystemPath empty', { ...base, FileSystemPath: '' }, 'BadRequest', /^FileSystemPath: String must contain at least 1 character/],
      ['Create', 'FileSystemPath without /', { ...base, FileSystemPath: 'ns2' }, 'BadRequest', /FileSystemPath "ns2" must begin with \//],
      ['Create', 'FileSystemPath with LF', { ...base, FileSystemPath: '/ns2\nx' }, 'BadRequest', /^FileSystemPath: must not contain NUL, CR, LF/],
      ['Create', 'FileSystemPath too long', { ...base, FileSystemPath: '/a'.repeat(2049) }, 'BadRequest', /^FileSystemPath: String must contain at most 4096/],
      ['Create', 'FileSystemPath with ..', { ...base, FileSystemPath: '/ns2/../etc' }, 'BadRequest', /has a \.\. component/],
      ['Create', 'DataRepositoryPath missing', { FileSystemId: fsId, FileSystemPath: '/ns2' }, 'BadRequest', /^DataRepositoryPath: is required$/],
      ['Create', 'DataRepositoryPath too short', { ...base, DataRepositoryPath: 's3' }, 'BadRequest', /^DataRepositoryPath: String must contain at least 3/],
      ['Create', 'DataRepositoryPath not s3://', { ...base, DataRepositoryPath: 'https://bucket/ns2/' }, 'BadRequest', /must have the form s3:\/\/bucket\//],
      ['Create', 'DataRepositoryPath bad bucket', { ...base, DataRepositoryPath: 's3://My_Bucket/' }, 'BadRequest', /"My_Bucket" is not a valid S3 bucket name/],
      ['Create', 'DataRepositoryPath with NUL', { ...base, DataRepositoryPath: 's3://bucket/a\u0000b/' }, 'BadRequest', /^DataRepositoryPath: must not contain NUL/],
      ['Create', 'ImportedFileChunkSize 0', { ...base, ImportedFileChunkSize: 0 }, 'BadRequest', /^ImportedFileChunkSize: Number must be greater than or equal to 1$/],
      ['Create', 'ImportedFileChunkSize too big', { ...base, ImportedFileChunkSize: 512001 }, 'BadRequest', /^ImportedFileChunkSize: Number must be less than or equal to 512000$/],
      ['Create', 'ImportedFileChunkSize fraction', { ...base, ImportedFileChunkSize: 1.5 }, 'BadRequest', /^ImportedFileChunkSize: Expected integer/],
      ['Create', 'ImportedFileChunkSize string', { ...base, ImportedFileChunkSize: '1024' }, 'BadRequest', /^ImportedFileChunkSize: Expected number, received string$/],
      ['Create', 'BatchImportMetaDataOnCreate string', { ...base, BatchImportMetaDataOnCreate: 'yes' }, 'BadRequest', /^BatchImportMetaDataOnCreate: Expected boolean/],
      ['Create', 'an unknown event', { ...base, S3: { AutoImportPolicy: { Events: ['NEW', 'MOVED'] } } }, 'BadRequest', /^S3\.AutoImportPolicy\.Events\.1: Invalid enum value/],
      ['Create', 'a repeated event', { ...base, S3: { AutoExportPolicy: { Events: ['NEW', 'NEW'] } } }, 'BadRequest', /^S3\.AutoExportPolicy\.Events: must not repeat an event type$/],
      ['Create', 'four events', { ...base, S3: { AutoExportPolicy: { Events: ['NEW', 'CHANGED', 'DELETED', 'NEW'] } } }, 'BadRequest', /^S3\.AutoExportPolicy\.Events: Array must contain at most 3/],
      ['Create', 'an unknown policy', { ...base, S3: { AutoSyncPolicy: { Events: ['NEW'] } } }, 'BadRequest', /^S3\.AutoSyncPolicy: not a parameter/],
      ['Create', 'an empty token', { ...base, ClientRequestToken: '' }, 'BadRequest', /^ClientRequestToken: String must contain at least 1/],
      ['Create', 'a token with a space', { ...base, ClientRequestToken: 'a b' }, 'BadRequest', /^ClientRequestToken: may contain only letters, digits/],
      ['Create', 'a 64-character token', { ...base, ClientRequestToken: 't'.repeat(64) }, 'BadRequest', /^ClientRequestToken: String must contain at most 63/],
      ['Create', 'no tags', { ...base, Tags: [] }, 'BadRequest', /^Tags: Array must contain at least 1/],
      ['Create', 'an empty tag key', { ...base, Tags: [{ Key: '', Value: 'v' }] }, 'BadRequest', /^Tags\.0\.Key: String must contain at least 1/],
      ['Create', 'a tag key with #', { ...base, Tags: [{ Key: 'a#b', Value: 'v' }] }, 'BadRequest', /^Tags\.0\.Key: may contain only/],
      ['Create', '51 tags', { ...base, Tags: Array.from({ length: 51 }, (_, i) => ({ Key: `k${i}`, Value: 'v' })) }, 'BadRequest', /^Tags: Array must contain at most 50/],
      ['Create', 'overlapping FileSystemPath', { ...base, FileSystemPath: '/ns1/sub' }, 'BadRequest', /FileSystemPath \/ns1\/sub overlaps \/ns1 of dra-/],
      ['Create', 'overlapping DataRepositoryPath', { ...base, DataRepositoryPath: 's3://unregistered-bucket/p/q' }, 'BadRequest', /DataRepositoryPath s3:\/\/unregistered-bucket\/p\/q\/ overlaps s3:\/\/unregistered-bucket\/p\//],
      ['Create', '/ when one exists', { ...base, FileSystemPath: '/' }, 'BadRequest', /FileSystemPath \/ can only be the first and only/],
      ['Create', 'a token reused with other parameters', { ...base, FileSystemPath: '/ns9', DataRepositoryPath: 's3://unregistered-bucket/p/', ClientRequestToken: 'first' }, 'IncompatibleParameterError', /ClientRequestToken first was used with a different (FileSystemPath|DataRepositoryPath)/],
      ['Update', 'AssociationId missing', {}, 'BadRequest', /^AssociationId: is required$/],
      ['Update', 'AssociationId malformed', { AssociationId: 'dra-nothexnothex' }, 'BadRequest', /^AssociationId: must be dra- followed by hex digits$/],
      ['Update', 'an unknown association', { AssociationId: 'dra-0123456789abcdef0' }, 'DataRepositoryAssociationNotFound', /dra-0123456789abcdef0 does not exist/],
      ['Update', 'FileSystemPath (paths cannot change)', { AssociationId: id, FileSystemPath: '/ns5' }, 'BadRequest', /^FileSystemPath: not a parameter of this operation$/],
      ['Update', 'DataRepositoryPath (paths cannot change)', { AssociationId: id, DataRepositoryPath: 's3://bucket/x/' }, 'BadRequest', /^DataRepositoryPath: not a parameter of this operation$/],
      ['Update', 'ImportedFileChunkSize negative', { AssociationId: id, ImportedFileChunkSize: -1 }, 'BadRequest', /^ImportedFileChunkSize: Number must be greater/],
      ['Delete', 'DeleteDataInFileSystem a string', { AssociationId: id, DeleteDataInFileSystem: 'true' }, 'BadRequest', /^DeleteDataInFileSystem: Expected boolean, received string$/],
      ['Delete', 'an unknown association', { AssociationId: 'dra-0123456789abcdef0' }, 'DataRepositoryAssociationNotFound', /does not exist/],
      ['Describe', 'an unknown association', { AssociationIds: [id, 'dra-0123456789abcdef0'] }, 'DataRepositoryAssociationNotFound', /dra-0123456789abcdef0 does not exist/],
      ['Describe', 'MaxResults 0', { MaxResults: 0 }, 'BadRequest', /^MaxResults: Number must be greater than or equal to 1$/],
      ['Describe', 'MaxResults 26', { MaxResults: 26 }, 'BadRequest', /^MaxResults: Number must be less than or equal to 25$/],
      ['Describe', 'a NextToken not base64', { NextToken: 'not a token!' }, 'BadRequest', /^NextToken: is not a token this API returned$/],
      ['Describe', 'a NextToken not ours', { NextToken: Buffer.from('x').toString('base64') }, 'BadRequest', /NextToken is not a token this API returned/],
      ['Describe', 'an unknown filter', { Filters: [{ Name: 'colour', Values: ['red'] }] }, 'BadRequest', /^Filters\.0\.Name: Invalid enum value/],
      ['Describe', 'a filter for other resources', { Filters: [{ Name: 'volume-id', Values: ['fsvol-1'] }] }, 'BadRequest', /filter volume-id does not apply to data repository associations/],
      ['Describe', 'another file system', { Filters: [{ Name: 'file-system-id', Values: ['fs-00000000000000000'] }] }, 'FileSystemNotFound', /fs-00000000000000000 does not exist here/],
      ['Describe', 'a filter without values', { Filters: [{ Name: 'file-system-id' }] }, 'BadRequest', /filter file-system-id needs at least one value in Values/],
      ['Describe', 'an unknown repository type', { Filters: [{ Name: 'data-repository-type', Values: ['EFS'] }] }, 'InvalidDataRepositoryType', /EFS is not one of S3, NFS/],
      ['Describe', '51 ids', { AssociationIds: Array.from({ length: 51 }, () => id) }, 'BadRequest', /^AssociationIds: Array must contain at most 50/],
      ['Describe', '11 filters', { Filters: Array.from({ length: 11 }, () => ({ Name: 'data-repository-type', Values: ['S3'] })) }, 'BadRequest', /^Filters: Array must contain at most 10/],
      ['DescribeFileSystems', 'another file system', { FileSystemIds: ['fs-00000000000000000'] }, 'FileSystemNotFound', /fs-00000000000000000 does not exist here/]
    ]
    const operation = (op: string): string => op === 'DescribeFileSystems' ? op : `${op}DataRepositoryAssociation${op === 'Describe' ? 's' : ''}`
    const replies = await Promise.all(cases.map(async ([op, , input]) => await call(operation(op), input)))
    cases.forEach(([op, what, , type, message], i) => isError(t, replies[i], 400, type, message, `${op}: ${what}`))
    t.equal(await snapshot(), before, 'nothing changed: Describe answers the same, no directory appeared')
  })

  t.test('Parameter and Limit travel with their errors', async (t) => {
    const reused = await call('CreateDataRepositoryAssociation', { FileSystemId: fsId, FileSystemPath: '/ns1', DataRepositoryPath: 's3://unregistered-bucket/p/', ClientRequestToken: 'first', ImportedFileChunkSize: 5 })
    isError(t, reused, 400, 'IncompatibleParameterError', /ClientRequestToken first was used with a different ImportedFileChunkSize/)
    t.equal(reused.json.Parameter, 'ImportedFileChunkSize')
    const replay = await call('CreateDataRepositoryAssociation', { FileSystemId: fsId, FileSystemPath: '/ns1', DataRepositoryPath: 's3://unregistered-bucket/p/', ClientRequestToken: 'first' })
    t.equal(replay.status, 200, 'the same request with the same token is answered again')
    t.equal(replay.json.Association.AssociationId, id)
    t.equal(await snapshot(), before, 'and creates nothing')

    for (let i = 2; i <= 8; i++) {
      const r = await call('CreateDataRepositoryAssociation', { FileSystemId: fsId, FileSystemPath: `/ns${i}`, DataRepositoryPath: `s3://unregistered-bucket/q${i}/` })
      t.equal(r.status, 200, `DRA ${i}`)
    }
    const ninth = await call('CreateDataRepositoryAssociation', { FileSystemId: fsId, FileSystemPath: '/ns9', DataRepositoryPath: 's3://unregistered-bucket/q9/' })
    isError(t, ninth, 400, 'ServiceLimitExceeded', /at most 8 data repository associations/, 'the 9th DRA')
    t.equal(ninth.json.Limit, 'DATA_REPOSITORY_ASSOCIATIONS')
  })

  t.test('tags', async (t) => {
    const arn = `arn:aws:fsx:us-east-1:000000000000:association/${fsId}/${id}`
    t.equal((await call('TagResource', { ResourceARN: arn, Tags: [{ Key: 'team', Value: 'a' }, { Key: 'env', Value: 'test' }] })).status, 200)
    t.equal((await call('TagResource', { ResourceARN: arn, Tags: [{ Key: 'team', Value: 'b' }] })).status, 200)
    t.same((await call('ListTagsForResource', { ResourceARN: arn })).json, { Tags: [{ Key: 'env', Value: 'test' }, { Key: 'team', Value: 'b' }] })
    t.equal((await call('UntagResource', { ResourceARN: arn, TagKeys: ['env'] })).status, 200)
    t.same((await call('ListTagsForResource', { ResourceARN: arn })).json, { Tags: [{ Key: 'team', Value: 'b' }] })
    t.match((await call('DescribeDataRepositoryAssociations', { AssociationIds: [id] })).json.Associations[0].Tags, [{ Key: 'team', Value: 'b' }])
    isError(t, await call('ListTagsForResource', { ResourceARN: arn.replace(id, 'dra-0123456789abcdef0') }), 400, 'ResourceNotFound', /no data repository association has the ARN/)
    isError(t, await call('TagResource', { ResourceARN: `arn:aws:fsx:us-east-1:000000000000:file-system/${fsId}`, Tags: [{ Key: 'k', Value: 'v' }] }), 400, 'ResourceDoesNotSupportTagging', /tags on data repository associations only/)
  })
})
