/**
 * Batch import of one S3 prefix into a DRA's directory (import tasks and
 * BatchImportMetaDataOnCreate): the listing is streamed page by page and each page is applied to
 * the namespace in one batch (src/fs/import-entries.ts). Memory holds one page.
 *
 * A listing says what exists, not the POSIX metadata an object carries: a HEAD per object would
 * bound the import by the server's HEAD rate (a tenth of its listing rate on s3rver). So files come
 * in listed-only, and their metadata is read before anyone sees their attributes
 * (src/sync/listed-settler.ts). HEADed here: directory markers (few, and a directory's mode matters
 * to every lookup below it) and existing entries whose object changed (their metadata must be
 * compared now).
 *
 * Every object ends in exactly one `onResult` call, so callers can count and report.
 */
import type { S3Client } from '@aws-sdk/client-s3'
import type { Namespace } from '../namespace/namespace'
import type { ContentStore } from '../content/content'
import { type ImportItem, type ImportOutcome, importEntries } from '../fs/import-entries'
import { NOT_POSIX, keyToPath } from '../repo/key-mapping'
import { type ListedObject, listObjectPages, s3ErrorCode, describeS3Error } from '../repo/objects'
import { type ItemPlace, headedItem, listedItem } from './object-items'
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
    const at = { dra: o.draId, bucket: o.bucket, components: path.components }
    return path.directory ? await readWhole(o, at, obj.key) : listedItem(at, obj)
  })
  const outcomes = await apply(o, objects, items)
  // Existing entries whose objects changed: their metadata now, then the same again.
  const again = objects.flatMap((obj, i) => outcomes[i] === 'needs-metadata' ? [{ obj, listed: items[i] as ImportItem }] : [])
  if (again.length === 0) return
  const headed = await mapLimit(again, HEAD_CONCURRENCY, async ({ obj, listed }) =>
    await readWhole(o, { dra: o.draId, bucket: o.bucket, components: listed.components }, obj.key))
  await apply(o, again.map((a) => a.obj), headed)
}

/** Applies what can be applied and reports every object but those that need their metadata first. */
async function apply (o: BatchImportOptions, objects: ListedObject[], items: Array<ImportItem | ImportOutcome>): Promise<ImportOutcome[]> {
  const outcomes: ImportOutcome[] = []
  const applicable: ImportItem[] = []
  const at: number[] = []
  items.forEach((item, i) => {
    if (isItem(item)) { applicable.push(item); at.push(i) } else outcomes[i] = item
  })
  if (applicable.length > 0) {
    const applied = await importEntries(o.ns, o.content, o.rootIno, applicable)
    applied.forEach((outcome, j) => { outcomes[at[j]] = outcome })
  }
  outcomes.forEach((outcome, i) => { if (outcome !== 'needs-metadata') o.onResult(objects[i].key, outcome) })
  return outcomes
}

/** The object as a whole import item, or why it could not be read. */
async function readWhole (o: BatchImportOptions, at: ItemPlace, key: string): Promise<ImportItem | ImportOutcome> {
  try {
    return await headedItem(o.client, at, key, o.signal)
  } catch (err) {
    return { error: s3ErrorCode(err), message: describeS3Error(err) }
  }
}

function isItem (x: ImportItem | ImportOutcome): x is ImportItem {
  return typeof x === 'object' && 'components' in x
}
