/**
 * The file system's data repository associations and their durable request queue
 * (spec/fsx-dra.md §4–7, §9–10).
 *
 * Create, update and delete are answered at once: each checks the rules, then writes the changed
 * record, a queued request and the answer to its ClientRequestToken in one LevelDB batch, so a
 * refused request changes nothing and an accepted one survives a crash. The DraWorker
 * (worker.ts) then works the queue one request at a time, in order, and settles the lifecycle
 * through `complete`. All changes run under one FIFO mutex, so the rules see a consistent table.
 *
 * At most 8 associations and 8 unfinished requests (the one being worked included).
 */
import { EventEmitter } from 'node:events'
import { Mutex } from '../util/mutex'
import type { Op, Store } from '../store/db'
import { draKey, draRange, draRequestKey, draRequestRange, draTokenKey, draTokenRange } from '../store/keys'
import {
  type DraRecord, type FsIdentity, type Lifecycle, type S3Config, type Tag, associationView,
  DEFAULT_CHUNK_SIZE_MIB, MAX_ASSOCIATIONS, MAX_QUEUED_REQUESTS, newAssociationId
} from './association'
import { FsxError, badRequest } from './errors'
import { fileSystemPathComponents, overlaps, parseRepositoryPath, repositoryPathsOverlap } from './paths'

export interface DraRequest {
  seq: number
  op: 'create' | 'update' | 'delete'
  AssociationId: string
  DeleteDataInFileSystem?: boolean
  /** Epoch ms. */
  queuedAt: number
}

interface TokenRecord { fingerprint: Record<string, string>, answer: unknown, at?: number }

/** How long a ClientRequestToken is remembered (clients retry within minutes; FSx documents no limit). */
const TOKEN_TTL_MS = 7 * 24 * 3600 * 1000

export interface CreateInput {
  FileSystemId: string
  FileSystemPath?: string
  DataRepositoryPath: string
  BatchImportMetaDataOnCreate?: boolean
  ImportedFileChunkSize?: number
  S3?: S3Config
  ClientRequestToken?: string
  Tags?: Tag[]
}

export interface UpdateInput { AssociationId: string, ClientRequestToken?: string, ImportedFileChunkSize?: number, S3?: S3Config }
export interface DeleteInput { AssociationId: string, ClientRequestToken?: string, DeleteDataInFileSystem?: boolean }
export interface DeleteAnswer { AssociationId: string, Lifecycle: Lifecycle, DeleteDataInFileSystem: boolean }

/** What kind of entry a path names in the file system (the DRA's directory must be a directory). */
export type PathKind = 'directory' | 'other' | 'missing'

export class Associations extends EventEmitter {
  private readonly mutex = new Mutex()
  private nextSeq: number

  private constructor (
    private readonly store: Store,
    readonly identity: FsIdentity,
    private readonly pathKind: (path: string) => Promise<PathKind>,
    private readonly records: Map<string, DraRecord>,
    private readonly requests: DraRequest[]
  ) {
    super()
    this.nextSeq = (requests.at(-1)?.seq ?? 0) + 1
  }

  static async open (store: Store, identity: FsIdentity, pathKind: (path: string) => Promise<PathKind>): Promise<Associations> {
    const records = new Map<string, DraRecord>()
    for await (const [, r] of store.entries<DraRecord>(draRange)) records.set(r.AssociationId, r)
    const requests: DraRequest[] = []
    for await (const [, q] of store.entries<DraRequest>(draRequestRange)) requests.push(q)
    // Forget old idempotency tokens (every AWS CLI call sends a fresh one).
    const expired: Op[] = []
    for await (const [key, t] of store.entries<TokenRecord>(draTokenRange)) {
      if ((t.at ?? 0) < Date.now() - TOKEN_TTL_MS) expired.push({ type: 'del', key })
    }
    await store.batch(expired)
    return new Associations(store, identity, pathKind, records, requests)
  }

  /** All associations, oldest first (then by id): the order Describe pages through. */
  list (): DraRecord[] {
    return [...this.records.values()].sort((a, b) => a.CreationTime - b.CreationTime || (a.AssociationId < b.AssociationId ? -1 : 1))
  }

  get (id: string): DraRecord | undefined { return this.records.get(id) }

  /** The oldest unfinished request, for the worker. */
  nextRequest (): DraRequest | undefined { return this.requests[0] }

  pendingRequests (): number { return this.requests.length }

  view (r: DraRecord): Record<string, unknown> { return associationView(this.identity, r) }

  create (input: CreateInput): Promise<Record<string, unknown>> {
    return this.idempotent('create', input, async () => {
      if (input.FileSystemId !== this.identity.id) throw new FsxError('FileSystemNotFound', `file system ${input.FileSystemId} does not exist here (this is ${this.identity.id})`)
      if (input.FileSystemPath === undefined) throw badRequest('FileSystemPath is required for a Lustre data repository association')
      const fsPath = fileSystemPathComponents(input.FileSystemPath)
      const repo = parseRepositoryPath(input.DataRepositoryPath)
      if (this.records.size >= MAX_ASSOCIATIONS) {
        throw new FsxError('ServiceLimitExceeded', `a file system has at most ${MAX_ASSOCIATIONS} data repository associations`, { Limit: 'DATA_REPOSITORY_ASSOCIATIONS' })
      }
      this.checkQueueRoom()
      for (const other of this.records.values()) {
        const otherPath = fileSystemPathComponents(other.FileSystemPath)
        if (fsPath.length === 0 || otherPath.length === 0) {
          throw badRequest(`FileSystemPath / can only be the first and only data repository association (${other.AssociationId} links ${other.FileSystemPath})`)
        }
        if (overlaps(fsPath, otherPath)) {
          throw badRequest(`FileSystemPath ${input.FileSystemPath} overlaps ${other.FileSystemPath} of ${other.AssociationId}`)
        }
        if (repositoryPathsOverlap(repo, parseRepositoryPath(other.DataRepositoryPath))) {
          throw badRequest(`DataRepositoryPath ${repo.normalized} overlaps ${other.DataRepositoryPath} of ${other.AssociationId}`)
        }
      }
      if (await this.pathKind(input.FileSystemPath) === 'other') throw badRequest(`FileSystemPath ${input.FileSystemPath} exists and is not a directory`)
      const record: DraRecord = {
        AssociationId: newAssociationId(),
        Lifecycle: 'CREATING',
        FileSystemPath: input.FileSystemPath,
        DataRepositoryPath: repo.normalized,
        BatchImportMetaDataOnCreate: input.BatchImportMetaDataOnCreate ?? false,
        ImportedFileChunkSize: input.ImportedFileChunkSize ?? DEFAULT_CHUNK_SIZE_MIB,
        ...(input.S3 !== undefined ? { S3: input.S3 } : {}),
        ...(input.Tags !== undefined ? { Tags: input.Tags } : {}),
        CreationTime: this.creationTime()
      }
      return { record, request: 'create', answer: { Association: this.view(record) } }
    })
  }

  update (input: UpdateInput): Promise<Record<string, unknown>> {
    return this.idempotent('update', input, async () => {
      const current = this.existing(input.AssociationId)
      if (current.Lifecycle === 'DELETING') throw badRequest(`association ${current.AssociationId} is being deleted`)
      if (current.Lifecycle === 'FAILED') throw badRequest(`association ${current.AssociationId} has FAILED (${current.FailureDetails?.Message ?? 'no details'}): delete it and create it again`)
      this.checkQueueRoom()
      const record: DraRecord = {
        ...current,
        Lifecycle: current.Lifecycle === 'CREATING' ? 'CREATING' : 'UPDATING',
        ...(input.ImportedFileChunkSize !== undefined ? { ImportedFileChunkSize: input.ImportedFileChunkSize } : {})
      }
      // Each policy given replaces that direction's policy; an absent one is left as it was.
      if (input.S3 !== undefined) record.S3 = { ...current.S3, ...input.S3 }
      return { record, request: 'update', answer: { Association: this.view(record) } }
    })
  }

  delete (input: DeleteInput): Promise<Record<string, unknown>> {
    return this.idempotent('delete', input, async () => {
      const current = this.existing(input.AssociationId)
      const deleteData = input.DeleteDataInFileSystem ?? false
      const answer: DeleteAnswer = { AssociationId: current.AssociationId, Lifecycle: 'DELETING', DeleteDataInFileSystem: deleteData }
      if (current.Lifecycle === 'DELETING') return { answer }
      this.checkQueueRoom()
      return { record: { ...current, Lifecycle: 'DELETING' }, request: 'delete', deleteData, answer }
    })
  }

  /** Replaces a DRA's tags (TagResource / UntagResource). */
  async setTags (id: string, change: (tags: Tag[]) => Tag[]): Promise<void> {
    await this.mutex.run(async () => {
      const current = this.existing(id)
      const record = { ...current, Tags: change(current.Tags ?? []) }
      await this.store.batch([{ type: 'put', key: draKey(id), value: record }])
      this.records.set(id, record)
      this.emit('changed', id) // the SQS importer follows the s3link:sqs-queue-url tag
    })
  }

  /**
   * The worker finished `request`: settle the association's lifecycle (or remove it) and drop the
   * request, in one batch. Changes made by requests accepted meanwhile are kept: only Lifecycle and
   * FailureDetails are set, and a DELETING association stays DELETING.
   */
  async complete (request: DraRequest, outcome: { lifecycle: Lifecycle, failure?: string } | 'removed'): Promise<void> {
    await this.mutex.run(async () => {
      const ops: Op[] = [{ type: 'del', key: draRequestKey(request.seq) }]
      const current = this.records.get(request.AssociationId)
      let next: DraRecord | undefined
      if (current !== undefined && outcome !== 'removed') {
        next = { ...current, Lifecycle: this.lifecycleAfter(request, current, outcome.lifecycle) }
        delete next.FailureDetails
        if (outcome.failure !== undefined) next.FailureDetails = { Message: outcome.failure.slice(0, 256) }
        ops.push({ type: 'put', key: draKey(next.AssociationId), value: next })
      } else if (outcome === 'removed') {
        ops.push({ type: 'del', key: draKey(request.AssociationId) })
      }
      await this.store.batch(ops, { sync: true })
      this.requests.splice(this.requests.findIndex((q) => q.seq === request.seq), 1)
      if (outcome === 'removed') this.records.delete(request.AssociationId)
      else if (next !== undefined) this.records.set(next.AssociationId, next)
      this.emit('changed', request.AssociationId)
    })
  }

  /**
   * A health check's verdict on an AVAILABLE or MISCONFIGURED association (worker.ts); ignored if
   * a request for it is queued meanwhile (that request's own check will settle it).
   */
  async settle (id: string, lifecycle: Lifecycle, failure?: string): Promise<void> {
    await this.mutex.run(async () => {
      const current = this.records.get(id)
      if (current === undefined || this.requests.some((q) => q.AssociationId === id)) return
      if (current.Lifecycle !== 'AVAILABLE' && current.Lifecycle !== 'MISCONFIGURED') return
      if (current.Lifecycle === lifecycle && current.FailureDetails?.Message === failure) return
      const next: DraRecord = { ...current, Lifecycle: lifecycle }
      delete next.FailureDetails
      if (failure !== undefined) next.FailureDetails = { Message: failure.slice(0, 256) }
      await this.store.batch([{ type: 'put', key: draKey(id), value: next }], { sync: true })
      this.records.set(id, next)
      this.emit('changed', id)
    })
  }

  private lifecycleAfter (request: DraRequest, current: DraRecord, result: Lifecycle): Lifecycle {
    if (current.Lifecycle === 'DELETING' && request.op !== 'delete') return 'DELETING'
    const later = this.requests.find((q) => q.seq > request.seq && q.AssociationId === request.AssociationId)
    if (later?.op === 'update' && result !== 'FAILED') return 'UPDATING'
    return result
  }

  /**
   * Now, in epoch seconds with milliseconds, but later than every association's: creation times
   * are unique, so oldest-first is the order of creation even within one millisecond.
   */
  private creationTime (): number {
    let ms = Date.now()
    for (const r of this.records.values()) ms = Math.max(ms, Math.round(r.CreationTime * 1000) + 1)
    return ms / 1000
  }

  private existing (id: string): DraRecord {
    const r = this.records.get(id)
    if (r === undefined) throw new FsxError('DataRepositoryAssociationNotFound', `data repository association ${id} does not exist`)
    return r
  }

  private checkQueueRoom (): void {
    if (this.requests.length >= MAX_QUEUED_REQUESTS) {
      throw new FsxError('ServiceLimitExceeded', `${this.requests.length} data repository association requests are already queued (at most ${MAX_QUEUED_REQUESTS}): retry when one has finished`, { Limit: 'DATA_REPOSITORY_ASSOCIATION_REQUESTS' })
    }
  }

  /**
   * Runs one mutating request: a ClientRequestToken seen before with the same parameters gets its
   * first answer again (nothing is queued twice); with other parameters, IncompatibleParameterError.
   */
  private async idempotent (
    op: DraRequest['op'],
    input: { ClientRequestToken?: string },
    decide: () => Promise<{ record?: DraRecord, request?: DraRequest['op'], deleteData?: boolean, answer: unknown }>
  ): Promise<Record<string, unknown>> {
    return await this.mutex.run(async () => {
      const token = input.ClientRequestToken
      const fingerprint = fingerprintOf(input)
      if (token !== undefined) {
        const seen = await this.store.get<TokenRecord>(draTokenKey(op, token))
        if (seen !== undefined) {
          const differing = Object.keys({ ...seen.fingerprint, ...fingerprint }).find((k) => seen.fingerprint[k] !== fingerprint[k])
          if (differing !== undefined) {
            throw new FsxError('IncompatibleParameterError', `ClientRequestToken ${token} was used with a different ${differing}`, { Parameter: differing })
          }
          return seen.answer as Record<string, unknown>
        }
      }
      const d = await decide()
      const ops: Op[] = []
      let request: DraRequest | undefined
      if (d.record !== undefined) ops.push({ type: 'put', key: draKey(d.record.AssociationId), value: d.record })
      if (d.request !== undefined && d.record !== undefined) {
        request = {
          seq: this.nextSeq++,
          op: d.request,
          AssociationId: d.record.AssociationId,
          ...(d.deleteData !== undefined ? { DeleteDataInFileSystem: d.deleteData } : {}),
          queuedAt: Date.now()
        }
        ops.push({ type: 'put', key: draRequestKey(request.seq), value: request })
      }
      if (token !== undefined) ops.push({ type: 'put', key: draTokenKey(op, token), value: { fingerprint, answer: d.answer, at: Date.now() } satisfies TokenRecord })
      await this.store.batch(ops, { sync: true })
      if (d.record !== undefined) this.records.set(d.record.AssociationId, d.record)
      if (request !== undefined) {
        this.requests.push(request)
        this.emit('queued', request)
      }
      return d.answer as Record<string, unknown>
    })
  }
}

/** Each top-level parameter but the token, as canonical JSON (key order does not matter). */
function fingerprintOf (input: object): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(input)) if (k !== 'ClientRequestToken' && v !== undefined) out[k] = canonicalJson(v)
  return out
}

function canonicalJson (v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`
  }
  return JSON.stringify(v)
}
