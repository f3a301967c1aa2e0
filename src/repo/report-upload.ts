/**
 * Writes a file to S3 as one object, streamed from disk (a completion report may be large):
 * lib-storage's Upload sends it in one PUT or as a multipart upload, whatever its size. The
 * bucket's encryption setting from the table applies, as for every object s3link writes.
 */
import fs from 'node:fs'
import { Upload } from '@aws-sdk/lib-storage'
import type { PutObjectCommandInput } from '@aws-sdk/client-s3'
import { resolveSettings } from './bucket-entry'
import type { S3Clients } from './s3-clients'

export async function uploadFile (clients: S3Clients, bucket: string, key: string, file: string, contentType: string): Promise<void> {
  const { client, entry } = await clients.forBucket(bucket)
  const params: PutObjectCommandInput = { Bucket: bucket, Key: key, Body: fs.createReadStream(file), ContentType: contentType }
  const sse = entry === undefined ? 'none' : resolveSettings(entry).sse
  if (sse !== 'none') params.ServerSideEncryption = sse
  if (sse === 'aws:kms' && entry !== undefined) params.SSEKMSKeyId = entry.kmsKeyId
  await new Upload({ client, params }).done()
}
