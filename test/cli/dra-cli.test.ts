/**
 * `s3link dra …` and `s3link credentials` against a real daemon, its FUSE mount and the embedded S3
 * server: what a user types and sees. One file system serves every step (they run in order), so
 * the file stays fast; each step leaves the state the next one expects.
 *
 * Runs the compiled CLI and daemon: build first (`npx tsc -p tsconfig.json`; `make test` does).
 */
import t from 'tap'
import { startFs, startS3, isolatedAwsEnv, run, type RunResult } from '../fixtures/harness'
import { AWS_CLI } from '../fixtures/aws'
import { shellQuote } from '../../src/cli/credentials'

const json = (r: RunResult): any => JSON.parse(r.stdout)

t.test('dra and credentials commands', async (t) => {
  const s3 = await startS3(t, ['bucket-a'])
  const tfs = await startFs(t, { env: isolatedAwsEnv(), config: { draCheckIntervalMs: 500 } })
  const add = await tfs.addBucket('bucket-a', s3.endpoint)
  t.equal(add.code, 0, add.stderr)
  const listJson = async (): Promise<any[]> => json(await tfs.cli(['dra', 'list', '--json'])).Associations
  let ns1 = ''
  let ns2 = ''

  t.test('bad arguments: exit 1, a clear message, nothing sent', async (t) => {
    const cases: Array<[string[], RegExp]> = [
      [['dra', 'create', '/ns1', 's3://bucket-a/p1/', '--import', 'NEW,MOVED'], /^s3link: --import: "MOVED" is not an event type: give a comma-separated list of NEW, CHANGED, DELETED, or none\n$/],
      [['dra', 'create', '/ns1', 's3://bucket-a/p1/', '--export', 'NEW,new'], /^s3link: --export: NEW is given twice\n$/],
      [['dra', 'create', '/ns1', '/data/p1'], /^s3link: DataRepositoryPath "\/data\/p1" must have the form s3:\/\/bucket\/ or s3:\/\/bucket\/prefix\/\n$/],
      [['dra', 'create', 'ns1', 's3://bucket-a/p1/'], /^s3link: FileSystemPath "ns1" must begin with \/\n$/],
      [['dra', 'create', '/ns1', 's3://bucket-a/p1/', '--chunk-size', '0'], /^s3link: --chunk-size: "0" is not a whole number of MiB from 1 to 512000\n$/],
      [['dra', 'show', 'ns1'], /^s3link: "ns1" is not an association id/],
      [['dra', 'show', 'dra-0123456789abcdef0'], /^s3link: DataRepositoryAssociationNotFound: data repository association dra-0123456789abcdef0 does not exist\n$/],
      [['dra', 'update', 'dra-0123456789abcdef0', '--import', 'NEW'], /^s3link: DataRepositoryAssociationNotFound: /],
      [['dra', 'delete', 'dra-0123456789abcdef0'], /^s3link: DataRepositoryAssociationNotFound: /]
    ]
    for (const [args, stderr] of cases) {
      const r = await tfs.cli(args)
      t.equal(r.code, 1, args.join(' '))
      t.match(r.stderr, stderr, args.join(' '))
      t.equal(r.stdout, '', 'no output on stdout')
    }
    t.same(await listJson(), [], 'nothing was created')
    t.equal((await tfs.cli(['dra', 'list'])).stdout, 'no data repository associations\n')
  })

  t.test('create answers CREATING, then the association becomes AVAILABLE and the directory exists', async (t) => {
    const r = await tfs.cli(['dra', 'create', '/ns1', 's3://bucket-a/p1', '--import', 'new,changed', '--json'])
    t.equal(r.code, 0, r.stderr)
    const a = json(r).Association
    t.match(a, {
      AssociationId: /^dra-[0-9a-f]{17}$/,
      ResourceARN: /^arn:aws:fsx:us-east-1:\d+:association\/fs-[0-9a-f]+\/dra-/,
      FileSystemId: /^fs-/,
      Lifecycle: 'CREATING',
      FileSystemPath: '/ns1',
      DataRepositoryPath: 's3://bucket-a/p1/',
      BatchImportMetaDataOnCreate: false,
      ImportedFileChunkSize: 1024,
      S3: { AutoImportPolicy: { Events: ['NEW', 'CHANGED'] } }
    })
    t.equal(typeof a.CreationTime, 'number')
    ns1 = a.AssociationId
    let shown = ''
    for (let i = 0; i < 50 && !/AVAILABLE/.test(shown); i++) {
      await new Promise((resolve) => setTimeout(resolve, 200))
      shown = (await tfs.cli(['dra', 'show', ns1])).stdout
    }
    t.equal(shown, `${ns1}  AVAILABLE\n  path:     /ns1 ↔ s3://bucket-a/p1/\n  import:   NEW,CHANGED\n  export:   off\n  chunks:   1024 MiB\n`)
    t.equal((await tfs.sh('test -d ns1')).code, 0, 'the directory is in the mount')
  })

  t.test('create --wait, given the path under the mountpoint', async (t) => {
    const r = await tfs.cli(['dra', 'create', tfs.p('ns2'), 's3://bucket-a/p2/', '--export', 'NEW,CHANGED,DELETED', '--batch-import', '--chunk-size', '64', '--wait'])
    t.equal(r.code, 0, r.stderr)
    t.match(r.stdout, /^dra-[0-9a-f]{17}  AVAILABLE\n  path:     \/ns2 ↔ s3:\/\/bucket-a\/p2\/\n  import:   off\n  export:   NEW,CHANGED,DELETED\n  chunks:   64 MiB \(batch import on create\)\n$/)
    ns2 = r.stdout.split(' ')[0]
    t.equal((await tfs.sh('test -d ns2')).code, 0)
  })

  t.test('a request the API refuses (overlap) changes nothing', async (t) => {
    const before = await listJson()
    const r = await tfs.cli(['dra', 'create', '/ns1/sub', 's3://bucket-a/other/'])
    t.equal(r.code, 1)
    t.match(r.stderr, /^s3link: BadRequest: FileSystemPath \/ns1\/sub overlaps \/ns1 of dra-/)
    t.same(await listJson(), before)
  })

  t.test('list', async (t) => {
    const r = await tfs.cli(['dra', 'list'])
    t.equal(r.code, 0, r.stderr)
    const lines = r.stdout.trimEnd().split('\n')
    t.match(lines[0], /^ID\s+LIFECYCLE\s+PATH\s+REPOSITORY\s+IMPORT\s+EXPORT$/)
    t.match(lines[1], new RegExp(`^${ns1}\\s+AVAILABLE\\s+/ns1\\s+s3://bucket-a/p1/\\s+NEW,CHANGED\\s+off$`))
    t.match(lines[2], new RegExp(`^${ns2}\\s+AVAILABLE\\s+/ns2\\s+s3://bucket-a/p2/\\s+off\\s+NEW,CHANGED,DELETED$`))
    t.same((await listJson()).map((a) => a.AssociationId), [ns1, ns2])
  })

  t.test('update changes the events; an empty list turns a direction off; the id alone re-checks', async (t) => {
    const r = await tfs.cli(['dra', 'update', ns1, '--import', '', '--export', 'DELETED', '--wait', '--json'])
    t.equal(r.code, 0, r.stderr)
    t.match(json(r).Association, { AssociationId: ns1, Lifecycle: 'AVAILABLE', S3: { AutoImportPolicy: { Events: [] }, AutoExportPolicy: { Events: ['DELETED'] } } })
    const none = await tfs.cli(['dra', 'update', ns2, '--export', 'none'])
    t.equal(none.code, 0, none.stderr)
    t.match(none.stdout, /^dra-\S+  UPDATING\n[\s\S]*  export:   off\n/)
    const recheck = await tfs.cli(['dra', 'update', ns2, '--wait'])
    t.equal(recheck.code, 0, recheck.stderr)
    t.match(recheck.stdout, new RegExp(`^${ns2}  AVAILABLE\\n[\\s\\S]*  import:   off\\n  export:   off\\n  chunks:   64 MiB`))
  })

  t.test('credentials: eval, then the AWS CLI talks to the API', async (t) => {
    const env: NodeJS.ProcessEnv = { ...process.env, AWS_PROFILE: 'not-a-profile', AWS_SESSION_TOKEN: 'stale', AWS_CONFIG_FILE: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent', AWS_PAGER: '' }
    delete env.AWS_CA_BUNDLE
    const script = `eval "$(${shellQuote(process.execPath)} bin/s3link credentials ${tfs.name} --config ${shellQuote(tfs.configPath)})" && ` +
      `${AWS_CLI} fsx describe-data-repository-associations --endpoint-url "$S3LINK_API_URL" --output json`
    const r = await run('bash', ['-c', script], { env, cwd: process.cwd() })
    t.equal(r.code, 0, r.stderr)
    t.same(JSON.parse(r.stdout).Associations.map((a: any) => a.AssociationId), [ns1, ns2])

    const lines = (await tfs.cli(['credentials', tfs.name])).stdout
    const { accessKeyId, secretAccessKey } = tfs.credentials()
    t.equal(lines, `export AWS_ACCESS_KEY_ID='${accessKeyId}'\nexport AWS_SECRET_ACCESS_KEY='${secretAccessKey}'\n` +
      `export AWS_DEFAULT_REGION='us-east-1'\nexport AWS_REGION='us-east-1'\nexport S3LINK_API_URL='${tfs.apiUrl()}'\nunset AWS_SESSION_TOKEN AWS_PROFILE\n`)

    const nasty = `it's $HOME \`id\` "q" \\ ;|&\n*`
    t.equal((await run('sh', ['-c', `printf %s ${shellQuote(nasty)}`])).stdout, nasty, 'quoting keeps any value literal')

    const stopped = await startFs(t, { mount: false })
    const r2 = await stopped.cli(['credentials', stopped.name])
    t.equal(r2.code, 1)
    t.match(r2.stderr, new RegExp(`^s3link: file system ${stopped.name} is not running`))
    t.equal(r2.stdout, '')
  })

  t.test('status --json shows the id, mountpoint and API URL', async (t) => {
    const s = json(await tfs.cli(['status', tfs.name, '--json']))
    t.match(s, { id: /^fs-[0-9a-f]+$/, mountpoint: tfs.mountpoint, apiUrl: tfs.apiUrl(), mounted: true })
  })

  t.test('delete keeps the directory unless --delete-data', async (t) => {
    const keep = await tfs.cli(['dra', 'delete', ns2, '--wait'])
    t.equal(keep.code, 0, keep.stderr)
    t.equal(keep.stdout, `deleted ${ns2}\n`)
    t.equal((await tfs.sh('test -d ns2')).code, 0, 'ns2 is still there')

    const r = await tfs.cli(['dra', 'delete', ns1, '--delete-data', '--json'])
    t.equal(r.code, 0, r.stderr)
    t.same(json(r), { AssociationId: ns1, Lifecycle: 'DELETING', DeleteDataInFileSystem: true })
    let left = await listJson()
    for (let i = 0; i < 50 && left.length > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 200))
      left = await listJson()
    }
    t.same(left, [])
    t.equal((await tfs.sh('test -e ns1')).code, 1, 'ns1 is gone from the mount')
    t.equal((await tfs.cli(['dra', 'list'])).stdout, 'no data repository associations\n')
  })
})
