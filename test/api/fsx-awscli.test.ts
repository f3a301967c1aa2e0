/**
 * The AWS CLI (Debian's /usr/bin/aws) as a real client of the FSx API (spec/fsx-dra.md §2–10):
 * create, describe (by id, by filters, by pages), update and delete of DRAs exactly as the FSx
 * docs write the commands, and what the CLI prints for rejected requests (exit code 254 for an
 * error the server returned, 252 for one the CLI found itself) while nothing changes.
 *
 * One daemon and one embedded S3 for the whole file (each CLI call costs about a second of Python
 * start-up, so independent calls run in parallel). Set-up and polling go through the Unix socket.
 * A TCP proxy in front of S3 holds bucket checks to fill the request queue.
 *
 * Runs the compiled daemon: build first (`npx tsc -p tsconfig.json`; `make test` does).
 */
import t, { type Test } from 'tap'
import { startFs, startS3, isolatedAwsEnv } from '../fixtures/harness'
import { startProxy } from '../fixtures/proxy'
import { aws, describeAll, fsx, waitForDra, type AwsResult } from '../fixtures/aws'

const ALL_EVENTS = 'AutoImportPolicy={Events=[NEW,CHANGED,DELETED]},AutoExportPolicy={Events=[NEW,CHANGED,DELETED]}'

t.test('FSx DRAs through the AWS CLI', async (t) => {
  const s3 = await startS3(t, ['bkt1', 'bkt2', 'bkt3', 'defaultchain'])
  const proxy = await startProxy(t, s3.port)
  // The default credential chain of the daemon finds the embedded S3 (for a bucket not in the table).
  // No periodic check during the file (an hour): only requests change a lifecycle here.
  const tfs = await startFs(t, {
    env: { ...isolatedAwsEnv({ accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }), AWS_ENDPOINT_URL_S3: s3.endpoint },
    config: { draCheckIntervalMs: 3_600_000 }
  })
  const fsId = JSON.parse((await tfs.cli(['status', tfs.name, '--json'])).stdout).id as string
  // s3rver does not check SigV4 signatures, only that the access key id is one it knows.
  for (const [name, endpoint, keyId] of [['bkt1', proxy.endpoint, 'S3RVER'], ['bkt2', s3.endpoint, 'S3RVER'], ['bkt3', s3.endpoint, 'NOT-A-KEY']]) {
    const r = await tfs.cli(['bucket', 'add', name, '--cloud', 'other', '--endpoint', endpoint, '--access-key-id', keyId, '--secret-access-key', 'S3RVER'])
    if (r.code !== 0) throw new Error(r.stderr)
  }

  const fsxCli = async (args: string[], opts?: Parameters<typeof aws>[2]): Promise<AwsResult> => await aws(tfs, ['fsx', ...args], opts)
  const createArgs = (fsPath: string, repo: string, ...more: string[]): string[] =>
    ['create-data-repository-association', '--file-system-id', fsId, '--file-system-path', fsPath, '--data-repository-path', repo, ...more]
  async function create (fsPath: string, repo: string): Promise<string> {
    const r = await fsx(tfs, 'CreateDataRepositoryAssociation', { FileSystemId: fsId, FileSystemPath: fsPath, DataRepositoryPath: repo })
    if (r.status !== 200) throw new Error(JSON.stringify(r.body))
    return r.body.Association.AssociationId
  }
  /** The CLI succeeded (its stderr is in the message otherwise). */
  function ok (t: Test, r: AwsResult, what: string): void {
    t.equal(r.code, 0, `${what} ${r.stderr}`)
  }
  /** The CLI's report of an error the server returned: exit 254 and its usual sentence. */
  function serverError (t: Test, r: AwsResult, operation: string, type: string, message: RegExp, what = type): void {
    t.equal(r.code, 254, `${what}: exit 254`)
    const sentence = new RegExp(`^\\nAn error occurred \\(${type}\\) when calling the ${operation} operation(?: \\(reached max retries: \\d+\\))?: `)
    t.match(r.stderr, sentence, `${what}: names ${type}`)
    t.match(r.stderr.replace(sentence, ''), message, `${what}: says what is wrong`)
    t.equal(r.stdout, '', `${what}: nothing on stdout`)
  }
  const snapshot = async (): Promise<string> => JSON.stringify(await describeAll(tfs)) + '\n' + (await tfs.sh('find . | sort')).stdout

  t.test('create, describe, update and delete', async (t) => {
    // As the FSx docs write it, with a trailing / on the file system path and none on the repository path.
    const [ca, cb] = await Promise.all([
      fsxCli(createArgs('/ns1/path1/', 's3://bkt1/myprefix', '--s3', ALL_EVENTS, '--tags', 'Key=team,Value=data')),
      fsxCli(createArgs('/ns2', 's3://bkt2/p'))
    ])
    ok(t, ca, 'create with policies')
    ok(t, cb, 'create without')
    const a = ca.json.Association
    const b = cb.json.Association
    t.match(a, {
      AssociationId: /^dra-[0-9a-f]{17}$/,
      ResourceARN: `arn:aws:fsx:us-east-1:000000000000:association/${fsId}/${String(a.AssociationId)}`,
      FileSystemId: fsId,
      Lifecycle: 'CREATING',
      FileSystemPath: '/ns1/path1/',
      DataRepositoryPath: 's3://bkt1/myprefix/',
      BatchImportMetaDataOnCreate: false,
      ImportedFileChunkSize: 1024,
      S3: { AutoImportPolicy: { Events: ['NEW', 'CHANGED', 'DELETED'] }, AutoExportPolicy: { Events: ['NEW', 'CHANGED', 'DELETED'] } },
      Tags: [{ Key: 'team', Value: 'data' }]
    }, 'answered at once with CREATING')
    t.match(a.CreationTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00$/, 'the CLI parsed CreationTime as a timestamp')
    t.match(b, { Lifecycle: 'CREATING', DataRepositoryPath: 's3://bkt2/p/' }, 'a trailing / added')
    t.notOk('S3' in b, 'no import or export policy unless given')

    await Promise.all([waitForDra(tfs, a.AssociationId, 'AVAILABLE'), waitForDra(tfs, b.AssociationId, 'AVAILABLE')])
    t.equal((await tfs.sh('test -d ns1/path1 && test -d ns2')).code, 0, 'the directories were created')

    const [byIds, byFilters, page1, tags, fileSystems] = await Promise.all([
      fsxCli(['describe-data-repository-associations', '--association-ids', a.AssociationId, b.AssociationId]),
      fsxCli(['describe-data-repository-associations', '--filters', `Name=file-system-id,Values=${fsId}`, 'Name=data-repository-type,Values=S3']),
      fsxCli(['describe-data-repository-associations', '--max-results', '1']),
      fsxCli(['list-tags-for-resource', '--resource-arn', a.ResourceARN]),
      fsxCli(['describe-file-systems'])
    ])
    ok(t, fileSystems, 'describe-file-systems')
    t.match(fileSystems.json.FileSystems, [{ FileSystemId: fsId, FileSystemType: 'LUSTRE', Lifecycle: 'AVAILABLE', LustreConfiguration: { DeploymentType: 'PERSISTENT_2' } }])
    ok(t, byIds, 'describe by ids')
    t.same(byIds.json.Associations.map((x: any) => x.Lifecycle), ['AVAILABLE', 'AVAILABLE'])
    t.same(new Set(byIds.json.Associations.map((x: any) => x.AssociationId)), new Set([a.AssociationId, b.AssociationId]))
    ok(t, byFilters, 'describe by filters')
    t.equal(byFilters.json.Associations.length, 2)
    ok(t, page1, 'first page')
    t.equal(page1.json.Associations.length, 1)
    t.type(page1.json.NextToken, 'string', 'a NextToken')
    const page2 = await fsxCli(['describe-data-repository-associations', '--max-results', '1', '--next-token', page1.json.NextToken])
    ok(t, page2, 'second page')
    t.equal(page2.json.Associations.length, 1)
    t.notOk('NextToken' in page2.json, 'the last page')
    t.same(new Set([page1.json.Associations[0].AssociationId, page2.json.Associations[0].AssociationId]), new Set([a.AssociationId, b.AssociationId]))
    ok(t, tags, 'list tags')
    t.same(tags.json.Tags, [{ Key: 'team', Value: 'data' }])

    const up = await fsxCli(['update-data-repository-association', '--association-id', a.AssociationId, '--imported-file-chunk-size', '2048', '--s3', 'AutoImportPolicy={Events=[NEW]}'])
    ok(t, up, 'update')
    t.match(up.json.Association, { Lifecycle: 'UPDATING', ImportedFileChunkSize: 2048, FileSystemPath: '/ns1/path1/', DataRepositoryPath: 's3://bkt1/myprefix/' })
    t.same(up.json.Association.S3, { AutoImportPolicy: { Events: ['NEW'] }, AutoExportPolicy: { Events: ['NEW', 'CHANGED', 'DELETED'] } }, 'only the policy given changed')
    t.match(await waitForDra(tfs, a.AssociationId, 'AVAILABLE'), { ImportedFileChunkSize: 2048, S3: { AutoImportPolicy: { Events: ['NEW'] } } })

    t.equal((await tfs.sh('echo kept > ns1/path1/keep.txt && mkdir ns2/sub && echo gone > ns2/sub/f')).code, 0)
    const [da, db] = await Promise.all([
      fsxCli(['delete-data-repository-association', '--association-id', a.AssociationId, '--no-delete-data-in-file-system']),
      fsxCli(['delete-data-repository-association', '--association-id', b.AssociationId, '--delete-data-in-file-system'])
    ])
    ok(t, da, 'delete keeping the data')
    ok(t, db, 'delete with the data')
    t.same(da.json, { AssociationId: a.AssociationId, Lifecycle: 'DELETING', DeleteDataInFileSystem: false })
    t.same(db.json, { AssociationId: b.AssociationId, Lifecycle: 'DELETING', DeleteDataInFileSystem: true })
    await Promise.all([waitForDra(tfs, a.AssociationId, undefined), waitForDra(tfs, b.AssociationId, undefined)])
    t.equal((await tfs.sh('cat ns1/path1/keep.txt')).stdout, 'kept\n', 'DeleteDataInFileSystem=false keeps the directory and its files')
    t.not((await tfs.sh('test -e ns2')).code, 0, 'DeleteDataInFileSystem=true removes them')
    serverError(t, await fsxCli(['describe-data-repository-associations', '--association-ids', a.AssociationId]),
      'DescribeDataRepositoryAssociations', 'DataRepositoryAssociationNotFound', new RegExp(`^data repository association ${String(a.AssociationId)} does not exist\\n$`), 'a deleted association')
  })

  t.test('rejected requests: what the CLI prints, and nothing changed', async (t) => {
    const c = await create('/ns3', 's3://bkt2/p3/')
    await waitForDra(tfs, c, 'AVAILABLE')
    const before = await snapshot()
    const creds = tfs.credentials()
    const [noSlash, fsOverlap, repoOverlap, root, otherFs, badEvent, updUnknown, delUnknown, maxResults, wrongSecret, unsigned, chunk0, shortId, updPath] = await Promise.all([
      fsxCli(createArgs('ns4', 's3://bkt2/p4/')),
      fsxCli(createArgs('/ns3/deeper', 's3://bkt2/p4/')),
      fsxCli(createArgs('/ns4', 's3://bkt2/p3/sub')),
      fsxCli(createArgs('/', 's3://bkt2/p4/')),
      fsxCli(['create-data-repository-association', '--file-system-id', 'fs-00000000000000000', '--file-system-path', '/ns4', '--data-repository-path', 's3://bkt2/p4/']),
      fsxCli(createArgs('/ns4', 's3://bkt2/p4/', '--s3', 'AutoImportPolicy={Events=[NEW,BOGUS]}')),
      fsxCli(['update-data-repository-association', '--association-id', 'dra-0123456789abcdef0', '--imported-file-chunk-size', '5']),
      fsxCli(['delete-data-repository-association', '--association-id', 'dra-0123456789abcdef0']),
      fsxCli(['describe-data-repository-associations', '--max-results', '26']),
      fsxCli(createArgs('/ns4', 's3://bkt2/p4/'), { credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: 'not-the-secret' } }),
      fsxCli([...createArgs('/ns4', 's3://bkt2/p4/'), '--no-sign-request']),
      fsxCli(createArgs('/ns4', 's3://bkt2/p4/', '--imported-file-chunk-size', '0')),
      fsxCli(['create-data-repository-association', '--file-system-id', 'fs-1', '--file-system-path', '/ns4', '--data-repository-path', 's3://bkt2/p4/']),
      fsxCli(['update-data-repository-association', '--cli-input-json', JSON.stringify({ AssociationId: c, FileSystemPath: '/ns9' })])
    ])
    const CREATE = 'CreateDataRepositoryAssociation'
    serverError(t, noSlash, CREATE, 'BadRequest', /^FileSystemPath "ns4" must begin with \/$/m, 'no leading /')
    serverError(t, fsOverlap, CREATE, 'BadRequest', new RegExp(`^FileSystemPath /ns3/deeper overlaps /ns3 of ${c}$`, 'm'), 'overlapping file system paths')
    serverError(t, repoOverlap, CREATE, 'BadRequest', new RegExp(`^DataRepositoryPath s3://bkt2/p3/sub/ overlaps s3://bkt2/p3/ of ${c}$`, 'm'), 'overlapping repository paths')
    serverError(t, root, CREATE, 'BadRequest', /^FileSystemPath \/ can only be the first and only data repository association/m, '/ as a second DRA')
    serverError(t, otherFs, CREATE, 'FileSystemNotFound', /^file system fs-00000000000000000 does not exist here/m, 'another file system')
    serverError(t, badEvent, CREATE, 'BadRequest', /^S3\.AutoImportPolicy\.Events\.1: Invalid enum value\. Expected 'NEW' \| 'CHANGED' \| 'DELETED', received 'BOGUS'$/m, 'an unknown event')
    serverError(t, updUnknown, 'UpdateDataRepositoryAssociation', 'DataRepositoryAssociationNotFound', /^data repository association dra-0123456789abcdef0 does not exist$/m, 'update of an unknown id')
    serverError(t, delUnknown, 'DeleteDataRepositoryAssociation', 'DataRepositoryAssociationNotFound', /^data repository association dra-0123456789abcdef0 does not exist$/m, 'delete of an unknown id')
    serverError(t, maxResults, 'DescribeDataRepositoryAssociations', 'BadRequest', /^MaxResults: Number must be less than or equal to 25$/m, 'MaxResults 26')
    serverError(t, wrongSecret, CREATE, 'SignatureDoesNotMatch', /signature does not match/, 'a wrong secret key')
    serverError(t, unsigned, CREATE, 'MissingAuthenticationTokenException', /authentication required/, 'an unsigned request')
    // Found by the CLI itself from the API model: exit 252, the request never left.
    t.equal(chunk0.code, 252)
    t.match(chunk0.stderr, /Parameter validation failed:\nInvalid value for parameter ImportedFileChunkSize, value: 0, valid min value: 1/)
    t.equal(shortId.code, 252)
    t.match(shortId.stderr, /Invalid length for parameter FileSystemId, value: 4, valid min length: 11/)
    t.equal(updPath.code, 252, 'paths cannot be updated: not even a parameter of Update')
    t.match(updPath.stderr, /Unknown parameter in input: "FileSystemPath"/)
    t.equal(await snapshot(), before, 'Describe answers the same and no directory appeared')
  })

  t.test('the 9th queued request and the 9th DRA', async (t) => {
    // A create whose bucket check hangs on the paused proxy holds the queue; 7 updates fill it.
    proxy.pause()
    const d = await create('/ns4', 's3://bkt1/d/')
    for (let i = 1; i <= 7; i++) t.equal((await fsx(tfs, 'UpdateDataRepositoryAssociation', { AssociationId: d, ImportedFileChunkSize: i })).status, 200)
    const before = await snapshot()
    const [ninthUpdate, ninthCreate] = await Promise.all([
      fsxCli(['update-data-repository-association', '--association-id', d, '--imported-file-chunk-size', '99']),
      fsxCli(createArgs('/ns5', 's3://bkt2/p5/'))
    ])
    const full = /^8 data repository association requests are already queued \(at most 8\): retry when one has finished$/m
    serverError(t, ninthUpdate, 'UpdateDataRepositoryAssociation', 'ServiceLimitExceeded', full, 'the 9th queued request (update)')
    serverError(t, ninthCreate, 'CreateDataRepositoryAssociation', 'ServiceLimitExceeded', full, 'the 9th queued request (create)')
    t.equal(await snapshot(), before, 'nothing changed')
    t.match((await describeAll(tfs)).find((x) => x.AssociationId === d), { Lifecycle: 'CREATING', ImportedFileChunkSize: 7 })
    proxy.resume()
    t.match(await waitForDra(tfs, d, 'AVAILABLE'), { ImportedFileChunkSize: 7 }, 'the queue drains, one request at a time, in order')

    // 2 exist (/ns3, /ns4): 6 more make 8.
    const extra: string[] = []
    for (let i = 5; i <= 10; i++) extra.push(await create(`/ns${i}`, `s3://bkt2/p${i}/`))
    await Promise.all(extra.map(async (id) => await waitForDra(tfs, id, 'AVAILABLE')))
    const eight = await snapshot()
    serverError(t, await fsxCli(createArgs('/ns11', 's3://bkt2/p11/')), 'CreateDataRepositoryAssociation', 'ServiceLimitExceeded',
      /^a file system has at most 8 data repository associations$/m, 'the 9th DRA')
    t.equal(await snapshot(), eight, 'nothing changed')
    for (const id of extra) await fsx(tfs, 'DeleteDataRepositoryAssociation', { AssociationId: id, DeleteDataInFileSystem: true })
    await Promise.all(extra.map(async (id) => await waitForDra(tfs, id, undefined)))
  })

  t.test('MISCONFIGURED until the credentials are fixed and an update names only the id', async (t) => {
    const e = await create('/ns5', 's3://bkt3/')
    await waitForDra(tfs, e, 'MISCONFIGURED')
    const shown = await fsxCli(['describe-data-repository-associations', '--association-ids', e])
    ok(t, shown, 'describe')
    t.match(shown.json.Associations[0], { Lifecycle: 'MISCONFIGURED', FailureDetails: { Message: /^cannot use the S3 bucket bkt3: access denied: the credentials may not list bkt3 \(403 InvalidAccessKeyId\)$/ } })
    t.equal((await tfs.cli(['bucket', 'modify', 'bkt3', '--access-key-id', 'S3RVER'])).code, 0)
    t.equal((await describeAll(tfs)).find((x) => x.AssociationId === e).Lifecycle, 'MISCONFIGURED', 'fixing the cause alone is not noticed before the next periodic check')
    const up = await fsxCli(['update-data-repository-association', '--association-id', e])
    ok(t, up, 'update with only the id')
    t.equal(up.json.Association.Lifecycle, 'UPDATING')
    const back = await waitForDra(tfs, e, 'AVAILABLE', 5000)
    t.notOk('FailureDetails' in back, 'the failure is cleared')
  })

  t.test('ClientRequestToken: a repeated request is answered once; other parameters are refused', async (t) => {
    const args = createArgs('/ns6', 's3://defaultchain/', '--client-request-token', 'cli-token-1')
    const [f1, f2] = await Promise.all([fsxCli(args), fsxCli(args)])
    ok(t, f1, 'first')
    ok(t, f2, 'repeated')
    t.equal(f2.json.Association.AssociationId, f1.json.Association.AssociationId, 'the same association')
    t.equal((await describeAll(tfs)).filter((x) => x.FileSystemPath === '/ns6').length, 1, 'created once')
    serverError(t, await fsxCli(createArgs('/ns7', 's3://defaultchain/', '--client-request-token', 'cli-token-1')), 'CreateDataRepositoryAssociation',
      'IncompatibleParameterError', /^ClientRequestToken cli-token-1 was used with a different FileSystemPath$/m, 'the token with another path')
  })

  t.test('a bucket not in the table goes through the default credential chain', async (t) => {
    const f = (await describeAll(tfs)).find((x) => x.FileSystemPath === '/ns6').AssociationId
    const g = await create('/ns7', 's3://nosuchbucket/')
    await waitForDra(tfs, f, 'AVAILABLE')
    t.match((await waitForDra(tfs, g, 'FAILED')).FailureDetails, { Message: /^the S3 bucket nosuchbucket does not exist/ }, 'and asks the server the chain points to')
  })
})
