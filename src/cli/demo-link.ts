/**
 * The demo's link, made through the daemon's socket API as any client would: register the embedded
 * S3 server in the bucket table, then link /data to s3://BUCKET/data/ with automatic import and
 * export of every event type (one DRA). Safe to run on every demo start: `add` replaces the bucket
 * entry (the S3 port may differ from the last run) and a DRA already linking /data is kept.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { callApiOk, callFsx } from '../api/client'

export const DEMO_DIR = '/data'
const EVENTS = ['NEW', 'CHANGED', 'DELETED']
/** Lifecycles the worker is still working on: wait for them to settle. */
const BUSY = ['CREATING', 'UPDATING', 'DELETING']
const WAIT_MS = 20_000
const POLL_MS = 200

export interface DemoLink {
  AssociationId: string
  Lifecycle: string
  FileSystemPath: string
  DataRepositoryPath: string
  FailureDetails?: { Message: string }
  S3?: { AutoImportPolicy?: { Events?: string[] }, AutoExportPolicy?: { Events?: string[] } }
  /** True when this run created it, false when an earlier run's DRA was kept. */
  created: boolean
}

export async function linkDemo (socket: string, bucket: string, endpoint: string): Promise<DemoLink> {
  await callApiOk(socket, 'POST', '/add-mod-del-bucket', {
    form: { op: 'add', bucketname: bucket, cloud: 'other', endpoint, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }
  })
  const deadline = Date.now() + WAIT_MS
  // An earlier run's DRA may still be settling (a request left queued at the last stop).
  let dra = await settled(socket, deadline)
  let created = false
  if (dra === undefined) {
    const { FileSystems } = await callFsx(socket, 'DescribeFileSystems', {}) as { FileSystems: Array<{ FileSystemId: string }> }
    await callFsx(socket, 'CreateDataRepositoryAssociation', {
      FileSystemId: FileSystems[0].FileSystemId,
      FileSystemPath: DEMO_DIR,
      DataRepositoryPath: `s3://${bucket}${DEMO_DIR}/`,
      S3: { AutoImportPolicy: { Events: EVENTS }, AutoExportPolicy: { Events: EVENTS } }
    })
    created = true
    dra = await settled(socket, deadline)
  } else if (dra.Lifecycle === 'MISCONFIGURED') {
    // Maybe only the old S3 port: an update naming only the id re-checks the bucket now.
    await callFsx(socket, 'UpdateDataRepositoryAssociation', { AssociationId: dra.AssociationId })
    dra = await settled(socket, deadline)
  }
  if (dra === undefined) throw new Error(`the data repository association of ${DEMO_DIR} disappeared while it was being created`)
  return { ...dra, created }
}

/** The DRA of DEMO_DIR once it is not busy (or at the deadline), or undefined if there is none. */
async function settled (socket: string, deadline: number): Promise<Omit<DemoLink, 'created'> | undefined> {
  for (;;) {
    const { Associations } = await callFsx(socket, 'DescribeDataRepositoryAssociations', {}) as { Associations: Array<Omit<DemoLink, 'created'>> }
    // FileSystemPath is kept as given: /data/ is the same directory.
    const dra = Associations.find((a) => a.FileSystemPath.replace(/\/+$/, '') === DEMO_DIR)
    if (dra === undefined || !BUSY.includes(dra.Lifecycle) || Date.now() >= deadline) return dra
    await sleep(POLL_MS)
  }
}
