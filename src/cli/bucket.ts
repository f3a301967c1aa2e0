/**
 * `s3link bucket add|modify|delete|list|show|test NAME`: the bucket table through the daemon's
 * Unix socket (src/api/client.ts). Which file system: `--config FILE`, else `--fs NAME`, else the
 * only config in the config directory (several or none: an error asking for --fs).
 *
 * Secrets given as options are visible to other users in `ps`; `--secret-access-key -` (or
 * `--shared-secret -`) reads the value from stdin instead. Output never contains a secret: the API
 * does not return them.
 */
import type { Command } from 'commander'
import { callApiOk } from '../api/client'
import { UsageError } from '../util/errors'
import { print } from './output'
import { socketOf, type TargetOptions as CommonOptions } from './target'

/** Form fields settable from the command line, with their option names. */
const FIELD_OPTIONS: Array<[field: string, flag: string, description: string]> = [
  ['cloud', '--cloud <cloud>', 'aws, azure, minio or other (default on add: aws)'],
  ['endpoint', '--endpoint <url>', 'S3 endpoint URL (empty: the cloud\'s default)'],
  ['accessKeyId', '--access-key-id <id>', 'static credentials: access key id'],
  ['secretAccessKey', '--secret-access-key <secret>', 'static credentials: secret access key ("-": read it from stdin)'],
  ['accessRole', '--access-role <arn>', 'IAM role ARN to assume'],
  ['accessRoleExt', '--access-role-ext <id>', 'external id of that role'],
  ['sharedSecret', '--shared-secret <secret>', 'secret of the bucket\'s event webhook ("-": read it from stdin)'],
  ['region', '--region <region>', 'region (default us-east-1)'],
  ['pathStyle', '--path-style <bool>', 'true or false (default: false for aws, true otherwise)'],
  ['checksums', '--checksums <mode>', 'WHEN_SUPPORTED or WHEN_REQUIRED (default: WHEN_SUPPORTED for aws, else WHEN_REQUIRED)'],
  ['sse', '--sse <mode>', 'none, AES256 or aws:kms'],
  ['kmsKeyId', '--kms-key-id <id>', 'KMS key id for --sse aws:kms']
]

export function registerBucketCommands (cli: Command): void {
  const bucket = cli.command('bucket').description('the bucket table: endpoints and credentials of the buckets this file system reaches')
  const common = (cmd: Command): Command => cmd
    .option('--fs <name>', 'file system name (default: the only one configured)')
    .option('--config <file>', 'config file of the file system')
    .option('--json', 'print JSON')

  for (const op of ['add', 'modify'] as const) {
    const cmd = common(bucket.command(op)
      .description(op === 'add' ? 'register a bucket, or replace its whole entry' : 'change only the given settings of a registered bucket')
      .argument('<name>', 'bucket name'))
    for (const [, flag, description] of FIELD_OPTIONS) cmd.option(flag, description)
    cmd.action(async (name: string, o: CommonOptions & Record<string, string | undefined>) => {
      const form: Record<string, string> = { op, bucketname: name }
      for (const [field] of FIELD_OPTIONS) {
        const value = o[field]
        if (value !== undefined) form[field] = value
      }
      await readSecretsFromStdin(form)
      const reply = await callApiOk(await socketOf(o), 'POST', '/add-mod-del-bucket', { form })
      const view = reply.bucket as Record<string, unknown>
      print(o.json === true, view, `${op === 'add' ? 'added' : 'modified'} bucket ${name}\n${describeBucket(view)}`)
    })
  }

  common(bucket.command('delete').description('remove a bucket from the table').argument('<name>', 'bucket name'))
    .action(async (name: string, o: CommonOptions) => {
      const reply = await callApiOk(await socketOf(o), 'POST', '/add-mod-del-bucket', { form: { op: 'delete', bucketname: name } })
      print(o.json === true, reply, `deleted bucket ${name}`)
    })

  common(bucket.command('list').description('list registered buckets (never their secrets)'))
    .action(async (o: CommonOptions) => {
      const reply = await callApiOk(await socketOf(o), 'GET', '/api/buckets')
      const buckets = reply.buckets as Array<Record<string, unknown>>
      const rows = buckets.map((b) => [String(b.bucketname), String(b.cloud), String(b.credentials), String(b.region), b.endpoint === '' ? '(default)' : String(b.endpoint)])
      print(o.json === true, reply, buckets.length === 0 ? 'no buckets registered' : table([['NAME', 'CLOUD', 'CREDENTIALS', 'REGION', 'ENDPOINT'], ...rows]))
    })

  common(bucket.command('show').description('show one bucket\'s settings (secrets only as set / not set)').argument('<name>', 'bucket name'))
    .action(async (name: string, o: CommonOptions) => {
      const view = await callApiOk(await socketOf(o), 'GET', `/api/buckets/${encodeURIComponent(name)}`)
      print(o.json === true, view, describeBucket(view))
    })

  common(bucket.command('test')
    .description('HeadBucket and ListObjectsV2 with the bucket\'s settings: reachability, permission, latency (exit 1 if it fails)')
    .argument('<name>', 'bucket name (one not in the table is tested with the default AWS credentials)'))
    .action(async (name: string, o: CommonOptions) => {
      const r = await callApiOk(await socketOf(o), 'POST', `/api/buckets/${encodeURIComponent(name)}/test`)
      const ok = r.reachable === true && r.authorized === true
      print(o.json === true, r, ok
        ? `${name}: reachable, authorized (${String(r.credentials)} credentials), HeadBucket ${String(r.latencyMs)} ms`
        : `${name}: ${r.reachable === true ? 'reachable' : 'not reachable'}, not authorized (${String(r.credentials)} credentials)`)
      if (!ok) throw new UsageError(`bucket test failed: ${String(r.error)}`)
    })
}

async function readSecretsFromStdin (form: Record<string, string>): Promise<void> {
  const fromStdin = ['secretAccessKey', 'sharedSecret'].filter((f) => form[f] === '-')
  if (fromStdin.length > 1) throw new UsageError('only one of --secret-access-key and --shared-secret can be read from stdin')
  if (fromStdin.length === 0) return
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  const value = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
  if (value === '') throw new UsageError(`no ${fromStdin[0]} on stdin`)
  form[fromStdin[0]] = value
}

function describeBucket (b: Record<string, unknown>): string {
  const lines: Array<[string, unknown]> = [
    ['bucket', b.bucketname], ['cloud', b.cloud], ['endpoint', b.endpoint === '' ? '(default)' : b.endpoint],
    ['region', b.region], ['path style', b.pathStyle], ['checksums', b.checksums],
    ['encryption', b.sse === 'aws:kms' ? `aws:kms (${String(b.kmsKeyId)})` : b.sse],
    ['credentials', b.credentials]
  ]
  if (b.credentials === 'static') lines.push(['access key id', b.accessKeyId], ['secret key', b.hasSecretAccessKey === true ? 'set' : 'not set'])
  if (b.credentials === 'role') lines.push(['role', b.accessRole], ['external id', b.accessRoleExt === '' ? '(none)' : b.accessRoleExt])
  lines.push(['shared secret', b.hasSharedSecret === true ? 'set' : 'not set'])
  return lines.map(([k, v]) => `  ${(k + ':').padEnd(15)}${String(v)}`).join('\n')
}

function table (rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)))
  return rows.map((r) => r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i])).join('  ')).join('\n')
}
