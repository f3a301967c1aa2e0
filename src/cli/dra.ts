/**
 * `s3link dra create|update|delete|list|show`: the file system's data repository associations
 * through its FSx API (awsJson over the Unix socket, src/api/client.ts), in the shapes `aws fsx`
 * sends, so the CLI can do nothing an FSx client could not. Arguments are checked here first
 * (event names, chunk size, paths, ids), so a mistyped command sends nothing.
 *
 * The daemon answers create, update and delete at once and works them in the background (FSx's
 * CREATING / UPDATING / DELETING); `--wait` polls Describe until the association has settled and
 * exits 1 unless it ended AVAILABLE (or, for delete, gone). Each request carries a fresh
 * ClientRequestToken, as the AWS CLI does, so a retried request is not queued twice.
 *
 * `--sqs-queue-url` is the tag s3link:sqs-queue-url (FSx has no field for it): sent with create,
 * and set or removed on an existing association with TagResource / UntagResource.
 */
import { randomUUID } from 'node:crypto'
import type { Command } from 'commander'
import { ApiCallError, callApiOk, callFsx } from '../api/client'
import { EVENT_TYPES, type EventType } from '../dra/association'
import { FsxError } from '../dra/errors'
import { fileSystemPathComponents, parseRepositoryPath } from '../dra/paths'
import { UsageError } from '../util/errors'
import { print } from './output'
import { socketOf, targetOptions, type TargetOptions } from './target'

interface Policy { Events?: string[] }
interface S3Config { AutoImportPolicy?: Policy, AutoExportPolicy?: Policy }

/** The FSx DataRepositoryAssociation fields the human output reads (--json prints all of them). */
interface Association {
  AssociationId: string
  ResourceARN?: string
  Lifecycle: string
  FailureDetails?: { Message?: string }
  FileSystemPath: string
  DataRepositoryPath: string
  BatchImportMetaDataOnCreate?: boolean
  ImportedFileChunkSize?: number
  S3?: S3Config
  Tags?: Array<{ Key: string, Value: string }>
}

interface PolicyOptions extends TargetOptions { import?: string, export?: string, chunkSize?: string, sqsQueueUrl?: string }
interface WaitOptions { wait?: boolean, timeout: string }

const SETTLING = ['CREATING', 'UPDATING', 'DELETING']
const POLL_MS = 300
const MAX_CHUNK_MIB = 512_000
const QUEUE_URL_TAG = 's3link:sqs-queue-url'

export function registerDraCommands (cli: Command): void {
  const dra = cli.command('dra').description('data repository associations: directories linked to S3 prefixes (FSx for Lustre DRAs)')
  const policyOptions = (cmd: Command): Command => cmd
    .option('--import <events>', `automatic import of S3 changes: comma-separated ${EVENT_TYPES.join(',')}, or none`)
    .option('--export <events>', `automatic export of file system changes: comma-separated ${EVENT_TYPES.join(',')}, or none`)
    .option('--chunk-size <mib>', `ImportedFileChunkSize in MiB (1-${MAX_CHUNK_MIB}, default 1024)`)
    .option('--sqs-queue-url <url>', `SQS queue fed by the bucket's event notifications, polled for automatic import (tag ${QUEUE_URL_TAG}; none removes it)`)
  const waitOptions = (cmd: Command): Command => cmd
    .option('--wait', 'wait until the request has been worked; exit 1 unless it succeeded')
    .option('--timeout <seconds>', 'how long --wait waits', '300')

  waitOptions(policyOptions(targetOptions(dra.command('create')
    .description('link a directory of the file system to an S3 prefix (the directory is created if missing)')
    .argument('<path>', 'directory inside the file system (/ns1), or its path under the mountpoint')
    .argument('<repository>', 's3://bucket/ or s3://bucket/prefix/ (the bucket must be in s3link bucket list)')))
    .option('--batch-import', 'import the metadata of the objects already under the prefix when the association is created'))
    .action(async (fsPath: string, repository: string, o: PolicyOptions & WaitOptions & { batchImport?: boolean }) => {
      const queueUrl = o.sqsQueueUrl !== undefined ? queueUrlOf(o.sqsQueueUrl) : undefined
      const input = {
        DataRepositoryPath: checked(() => parseRepositoryPath(repository)).normalized,
        ...(o.batchImport === true ? { BatchImportMetaDataOnCreate: true } : {}),
        ...policyInput(o),
        ...(queueUrl !== undefined ? { Tags: [{ Key: QUEUE_URL_TAG, Value: queueUrl }] } : {})
      }
      const timeout = timeoutOf(o)
      const socket = await socketOf(o)
      const fsInfo = await callApiOk(socket, 'GET', '/api/status')
      const reply = await callFsx(socket, 'CreateDataRepositoryAssociation', {
        FileSystemId: fsInfo.id,
        FileSystemPath: insideFileSystem(fsPath, String(fsInfo.mountpoint)),
        ...input,
        ClientRequestToken: randomUUID()
      })
      await report(socket, reply, o, timeout)
    })

  waitOptions(policyOptions(targetOptions(dra.command('update')
    .description('change an association\'s events or chunk size; with the id alone, check a MISCONFIGURED one again now')
    .argument('<id>', 'association id (dra-…)'))))
    .action(async (id: string, o: PolicyOptions & WaitOptions) => {
      const input = { AssociationId: checkedId(id), ...policyInput(o) }
      const queueUrl = o.sqsQueueUrl !== undefined ? queueUrlOf(o.sqsQueueUrl) ?? '' : undefined
      const timeout = timeoutOf(o)
      const socket = await socketOf(o)
      if (queueUrl !== undefined) {
        // Tags are not part of the update: FSx changes them with TagResource / UntagResource.
        const ResourceARN = (await describeOne(socket, id)).ResourceARN
        if (queueUrl === '') await callFsx(socket, 'UntagResource', { ResourceARN, TagKeys: [QUEUE_URL_TAG] })
        else await callFsx(socket, 'TagResource', { ResourceARN, Tags: [{ Key: QUEUE_URL_TAG, Value: queueUrl }] })
        // Only the tag was given: no update request (it would re-check the association for nothing).
        if (Object.keys(input).length === 1) {
          const a = await describeOne(socket, id)
          print(o.json === true, { Association: a }, describe(a))
          return
        }
      }
      const reply = await callFsx(socket, 'UpdateDataRepositoryAssociation', { ...input, ClientRequestToken: randomUUID() })
      await report(socket, reply, o, timeout)
    })

  waitOptions(targetOptions(dra.command('delete')
    .description('unlink a directory from S3 (its files stay unless --delete-data; nothing is deleted in S3)')
    .argument('<id>', 'association id (dra-…)')))
    .option('--delete-data', 'also delete the directory and everything in it from the file system')
    .action(async (id: string, o: TargetOptions & WaitOptions & { deleteData?: boolean }) => {
      const input = { AssociationId: checkedId(id), DeleteDataInFileSystem: o.deleteData === true }
      const timeout = timeoutOf(o)
      const socket = await socketOf(o)
      const reply = await callFsx(socket, 'DeleteDataRepositoryAssociation', { ...input, ClientRequestToken: randomUUID() })
      const what = `${id}${input.DeleteDataInFileSystem ? ' and its data in the file system' : ''}`
      if (o.wait !== true) {
        print(o.json === true, reply, `deleting ${what} (DELETING)`)
        return
      }
      const left = await waitSettled(socket, id, timeout, true)
      if (left === undefined) {
        print(o.json === true, reply, `deleted ${what}`)
        return
      }
      print(o.json === true, { Association: left }, describe(left))
      throw new UsageError(`deleting ${id} ended ${left.Lifecycle}${failureOf(left)}`)
    })

  targetOptions(dra.command('list').description('list the associations and their state'))
    .action(async (o: TargetOptions) => {
      const all = await describeAll(await socketOf(o))
      const rows = all.map((a) => [a.AssociationId, a.Lifecycle, a.FileSystemPath, a.DataRepositoryPath, events(a.S3?.AutoImportPolicy), events(a.S3?.AutoExportPolicy)])
      print(o.json === true, { Associations: all }, all.length === 0
        ? 'no data repository associations'
        : table([['ID', 'LIFECYCLE', 'PATH', 'REPOSITORY', 'IMPORT', 'EXPORT'], ...rows]))
    })

  targetOptions(dra.command('show').description('show one association').argument('<id>', 'association id (dra-…)'))
    .action(async (id: string, o: TargetOptions) => {
      checkedId(id)
      const a = await describeOne(await socketOf(o), id)
      print(o.json === true, { Association: a }, describe(a))
    })
}

/** Prints a create or update answer, or with --wait the settled association. */
async function report (socket: string, reply: Record<string, unknown>, o: TargetOptions & WaitOptions, timeout: number): Promise<void> {
  const first = reply.Association as Association
  const a = o.wait === true ? await waitSettled(socket, first.AssociationId, timeout, false) as Association : first
  print(o.json === true, { Association: a }, describe(a))
  if (o.wait === true && a.Lifecycle !== 'AVAILABLE') throw new UsageError(`${a.AssociationId} is ${a.Lifecycle}${failureOf(a)}`)
}

/**
 * Polls until the association is no longer CREATING / UPDATING / DELETING. With `gone`, it is
 * expected to disappear (delete): undefined once Describe no longer knows it.
 */
async function waitSettled (socket: string, id: string, timeoutS: number, gone: boolean): Promise<Association | undefined> {
  const deadline = Date.now() + timeoutS * 1000
  for (;;) {
    let a: Association
    try {
      a = await describeOne(socket, id)
    } catch (err) {
      if (gone && err instanceof ApiCallError && err.body.__type === 'DataRepositoryAssociationNotFound') return undefined
      throw err
    }
    if (!SETTLING.includes(a.Lifecycle)) return a
    if (Date.now() >= deadline) throw new UsageError(`${id} is still ${a.Lifecycle} after ${timeoutS} s (see s3link dra show ${id})`)
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
}

async function describeOne (socket: string, id: string): Promise<Association> {
  const reply = await callFsx(socket, 'DescribeDataRepositoryAssociations', { AssociationIds: [id] })
  return (reply.Associations as Association[])[0]
}

/** Every association: Describe returns at most 25 a page. */
async function describeAll (socket: string): Promise<Association[]> {
  const all: Association[] = []
  let token: string | undefined
  do {
    const page = await callFsx(socket, 'DescribeDataRepositoryAssociations', { MaxResults: 25, ...(token !== undefined ? { NextToken: token } : {}) })
    all.push(...page.Associations as Association[])
    token = page.NextToken as string | undefined
  } while (token !== undefined)
  return all
}

/** The S3 policies and chunk size given as options, in FSx's shape. */
function policyInput (o: PolicyOptions): { S3?: S3Config, ImportedFileChunkSize?: number } {
  const s3: S3Config = {}
  if (o.import !== undefined) s3.AutoImportPolicy = { Events: parseEvents('--import', o.import) }
  if (o.export !== undefined) s3.AutoExportPolicy = { Events: parseEvents('--export', o.export) }
  return {
    ...(Object.keys(s3).length > 0 ? { S3: s3 } : {}),
    ...(o.chunkSize !== undefined ? { ImportedFileChunkSize: parseChunkSize(o.chunkSize) } : {})
  }
}

/** "NEW,CHANGED" → ['NEW', 'CHANGED']; '' or none → [] (FSx: that direction is off). */
function parseEvents (flag: string, value: string): EventType[] {
  if (value.trim() === '' || value.trim().toLowerCase() === 'none') return []
  const out: EventType[] = []
  for (const raw of value.split(',')) {
    const name = raw.trim().toUpperCase() as EventType
    if (!EVENT_TYPES.includes(name)) {
      throw new UsageError(`${flag}: ${JSON.stringify(raw.trim())} is not an event type: give a comma-separated list of ${EVENT_TYPES.join(', ')}, or none`)
    }
    if (out.includes(name)) throw new UsageError(`${flag}: ${name} is given twice`)
    out.push(name)
  }
  return out
}

/** The --sqs-queue-url value checked (an http(s) URL); undefined for none or ''. */
function queueUrlOf (value: string): string | undefined {
  const v = value.trim()
  if (v === '' || v.toLowerCase() === 'none') return undefined
  let url: URL | undefined
  try { url = new URL(v) } catch { url = undefined }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || !/^\/[^/]+\/[^/]+\/?$/.test(url.pathname)) {
    throw new UsageError(`--sqs-queue-url: ${JSON.stringify(v)} is not an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME, or http(s)://HOST/ACCOUNT/NAME), nor none`)
  }
  return v
}

function parseChunkSize (value: string): number {
  const n = Number(value)
  if (!/^\d+$/.test(value.trim()) || n < 1 || n > MAX_CHUNK_MIB) throw new UsageError(`--chunk-size: ${JSON.stringify(value)} is not a whole number of MiB from 1 to ${MAX_CHUNK_MIB}`)
  return n
}

function timeoutOf (o: WaitOptions): number {
  const n = Number(o.timeout)
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--timeout: ${JSON.stringify(o.timeout)} is not a number of seconds`)
  return n
}

function checkedId (id: string): string {
  if (!/^dra-[0-9a-f]{8,19}$/.test(id)) throw new UsageError(`${JSON.stringify(id)} is not an association id (dra- and hex digits; see s3link dra list)`)
  return id
}

/**
 * The FileSystemPath for PATH. A path under the mountpoint means the directory it shows there,
 * which is what someone working in the mount will type; anything else is already a path inside
 * the file system.
 */
function insideFileSystem (p: string, mountpoint: string): string {
  const base = mountpoint.replace(/\/+$/, '')
  const inner = p === base || p === base + '/' ? '/' : p.startsWith(base + '/') ? p.slice(base.length) : p
  checked(() => fileSystemPathComponents(inner))
  return inner
}

/** Runs one of the API's own path checks here, so a bad path is refused before anything is sent. */
function checked<T> (check: () => T): T {
  try {
    return check()
  } catch (err) {
    if (err instanceof FsxError) throw new UsageError(err.message)
    throw err
  }
}

function describe (a: Association): string {
  const lines = [`${a.AssociationId}  ${a.Lifecycle}`]
  if (a.FailureDetails?.Message !== undefined) lines.push(`  failure:  ${a.FailureDetails.Message}`)
  lines.push(
    `  path:     ${a.FileSystemPath} ↔ ${a.DataRepositoryPath}`,
    `  import:   ${events(a.S3?.AutoImportPolicy)}`,
    `  export:   ${events(a.S3?.AutoExportPolicy)}`,
    `  chunks:   ${String(a.ImportedFileChunkSize)} MiB${a.BatchImportMetaDataOnCreate === true ? ' (batch import on create)' : ''}`
  )
  const queueUrl = a.Tags?.find((t) => t.Key === QUEUE_URL_TAG)?.Value
  if (queueUrl !== undefined) lines.push(`  sqs:      ${queueUrl}`)
  return lines.join('\n')
}

const events = (p?: Policy): string => p?.Events !== undefined && p.Events.length > 0 ? p.Events.join(',') : 'off'

const failureOf = (a: Association): string => a.FailureDetails?.Message !== undefined ? `: ${a.FailureDetails.Message}` : ''

function table (rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)))
  return rows.map((r) => r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i])).join('  ')).join('\n')
}
