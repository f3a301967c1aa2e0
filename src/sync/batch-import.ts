/**
 * Batch import of one S3 prefix into a DRA's directory (import tasks and
 * BatchImportMetaDataOnCreate): the listing is streamed page by page, each page's objects are
 * HEADed in parallel for their POSIX metadata (symlinks also GET for their target), and the page
 * is applied to the namespace in one batch (src/fs/import-entries.ts). Memory holds one page.
 * Every object ends in exactly one `onResult` call, so callers can count and report.
 */
import type { S3Client } from '@aws-sdk/client-s3'
import type { Namespace } from '../namespace/namespace'
import type { ContentStore } from '../content/content'
import { type ImportItem, type ImportOutcome, importEntries } from '../fs/import-entries'
import { NOT_POSIX, keyToPath } from '../repo/key-mapping'
import { decodePosixMetadata, entryTypeOf } from '../repo/posix-metadata'
import { type ListedObject, getObjectText, headObject, listObjectPages, s3ErrorCode, describeS3Error } from '../repo/objects'
import { mapLimit } from '../util/pool'

const HEAD_CONCURRENCY = 32

export interface BatchImportOptions {
  client: S3Client
  bucket: string
  /** The DRA's prefix (its DataRepositoryPath's key part, ending in / or empty). */
  draPrefix: string
  /** What to list: the DRA's prefix or a prefix below it. */
  listPrefix: string
  draId: string
  rootIno: number
  ns: Namespace
  content: ContentStore
  signal?: AbortSignal
  /** One call per object: its key and what happened to it. */
  onResult: (key: string, outcome: ImportOutcome) => void
  /** Called before each page is worked, with the number of objects it holds. */
  onListed?: (count: number) => void
}

export async function importPrefix (o: BatchImportOptions): Promise<void> {
  const pages = listObjectPages(o.client, o.bucket, o.listPrefix, o.signal)
  // One page of lookahead: the next listing call runs while this page is HEADed and applied.
  let pending = pages.next()
  while (true) {
    const page = await pending
    if (page.done === true) return
    pending = pages.next()
    pending.catch(() => undefined) // awaited on the next turn; don't let it go unhandled meanwhile
    o.onListed?.(page.value.length)
    await importPage(o, page.value)
    if (o.signal?.aborted === true) return
  }
}

async function importPage (o: BatchImportOptions, objects: ListedObject[]): Promise<void> {
  const items = await mapLimit(objects, HEAD_CONCURRENCY, async (obj): Promise<ImportItem | ImportOutcome> => {
    const path = keyToPath(o.draPrefix, obj.key)
    if ('problem' in path) return { error: NOT_POSIX, message: path.problem }
    try {
      const head = await headObject(o.client, o.bucket, obj.key, o.signal)
      const meta = decodePosixMetadata(head.meta)
      const type = path.directory ? 'directory' : entryTypeOf(obj.key, meta)
      const remote = { dra: o.draId, bucket: o.bucket, key: obj.key, etag: head.etag, size: head.size, modified: head.modified }
      const item: ImportItem = { components: path.components, type, meta, remote }
      if (type === 'symlink') item.target = await getObjectText(o.client, o.bucket, obj.key, o.signal)
      return item
    } catch (err) {
      return { error: s3ErrorCode(err), message: describeS3Error(err) }
    }
  })
  const applicable: ImportItem[] = []
  const keys: string[] = []
  items.forEach((item, i) => {
    if (isItem(item)) { applicable.push(item); keys.push(objects[i].key) } else o.onResult(objects[i].key, item)
  })
  if (applicable.length === 0) return
  const outcomes = await importEntries(o.ns, o.content, o.rootIno, applicable)
  outcomes.forEach((outcome, i) => o.onResult(keys[i], outcome))
}

function isItem (x: ImportItem | ImportOutcome): x is ImportItem {
  return typeof x === 'object' && 'components' in x
}
