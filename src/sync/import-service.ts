/**
 * Import for the file system's DRAs: which DRA an S3 path belongs to, and batch import of a DRA
 * (or of a prefix inside one) into its directory. Tasks and BatchImportMetaDataOnCreate call this.
 */
import type { Associations } from '../dra/associations'
import type { DraRecord } from '../dra/association'
import { parseRepositoryPath } from '../dra/paths'
import type { FileSystem } from '../fs/filesystem'
import type { ImportOutcome } from '../fs/import-entries'
import type { S3Clients } from '../repo/s3-clients'
import { isDir } from '../namespace/inode'
import { importPrefix } from './batch-import'

/** Usable for import: the DRA's directory and bucket are there. */
const IMPORTABLE = new Set(['AVAILABLE', 'UPDATING'])

export interface ImportRun {
  onResult: (path: string, key: string, outcome: ImportOutcome) => void
  onListed?: (count: number) => void
  signal?: AbortSignal
}

export class ImportService {
  constructor (
    private readonly associations: Associations,
    private readonly filesystem: FileSystem,
    private readonly clients: S3Clients,
    /** Called after each batch import: its files are listed-only until settled (src/sync/listed-settler.ts). */
    private readonly onImported: () => void = () => undefined
  ) {}

  /** The DRA whose repository path holds `s3Path` (s3://bucket/prefix), or undefined. */
  draFor (s3Path: string): DraRecord | undefined {
    const want = parseRepositoryPath(s3Path)
    return this.associations.list().find((r) => {
      const repo = parseRepositoryPath(r.DataRepositoryPath)
      return repo.bucket === want.bucket && want.prefix.startsWith(repo.prefix)
    })
  }

  /**
   * Imports the objects of `dra` below `listPrefix` (default: all of it). Results name each entry
   * by its path relative to the mount's root, as FSx's reports do.
   */
  async importDra (dra: DraRecord, run: ImportRun, listPrefix?: string): Promise<void> {
    if (!IMPORTABLE.has(dra.Lifecycle)) throw new Error(`data repository association ${dra.AssociationId} is ${dra.Lifecycle}`)
    const repo = parseRepositoryPath(dra.DataRepositoryPath)
    const root = await this.filesystem.resolve(dra.FileSystemPath)
    if (!isDir(root)) throw new Error(`${dra.FileSystemPath} is not a directory`)
    const { client } = await this.clients.forBucket(repo.bucket)
    const base = dra.FileSystemPath.replace(/^\/+|\/+$/g, '')
    await importPrefix({
      client,
      bucket: repo.bucket,
      draPrefix: repo.prefix,
      listPrefix: listPrefix ?? repo.prefix,
      draId: dra.AssociationId,
      rootIno: root.ino,
      ns: this.filesystem.ns,
      content: this.filesystem.content,
      signal: run.signal,
      onListed: run.onListed,
      onResult: (key, outcome) => {
        const rel = key.slice(repo.prefix.length).replace(/\/$/, '')
        run.onResult([base, rel].filter((p) => p !== '').join('/'), key, outcome)
      }
    }).finally(this.onImported)
  }
}
