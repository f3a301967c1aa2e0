/**
 * What an S3 object becomes in an import (src/fs/import-entries.ts), as batch import, automatic
 * import and the settler of listed-only entries build it: from its listing alone (a listed item:
 * its metadata is read later, src/sync/listed-settler.ts), or whole from a HEAD (and, for a
 * symlink's object, a GET of its target).
 */
import type { S3Client } from '@aws-sdk/client-s3'
import type { ImportItem } from '../fs/import-entries'
import { decodePosixMetadata, entryTypeOf } from '../repo/posix-metadata'
import { getObjectText, headObject, type ListedObject } from '../repo/objects'

export interface ItemPlace {
  /** The DRA's id and bucket. */
  dra: string
  bucket: string
  /** Components below the DRA's directory. */
  components: string[]
}

export function listedItem (at: ItemPlace, obj: ListedObject): ImportItem {
  const remote = { dra: at.dra, bucket: at.bucket, key: obj.key, etag: obj.etag, size: obj.size, modified: obj.modified }
  return { components: at.components, type: 'file', meta: {}, remote, listed: true }
}

/** Throws the S3 error (the caller reports, logs or retries it). */
export async function headedItem (client: S3Client, at: ItemPlace, key: string, signal?: AbortSignal): Promise<ImportItem> {
  const head = await headObject(client, at.bucket, key, signal)
  const meta = decodePosixMetadata(head.meta)
  const type = entryTypeOf(key, meta)
  const remote = { dra: at.dra, bucket: at.bucket, key, etag: head.etag, size: head.size, modified: head.modified }
  const item: ImportItem = { components: at.components, type, meta, remote }
  if (type === 'symlink') item.target = await getObjectText(client, at.bucket, key, signal)
  return item
}
