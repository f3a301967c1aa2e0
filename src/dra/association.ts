/**
 * A data repository association as FSx defines it (spec/fsx-dra.md §3). The record is stored in the
 * FSx shape itself (PascalCase fields), because that shape is the contract every client reads; the
 * two fields derived from the file system (FileSystemId, ResourceARN) are added by `associationView`.
 */
import { randomBytes } from 'node:crypto'

export const LIFECYCLES = ['CREATING', 'AVAILABLE', 'MISCONFIGURED', 'UPDATING', 'DELETING', 'FAILED'] as const
export type Lifecycle = typeof LIFECYCLES[number]

export const EVENT_TYPES = ['NEW', 'CHANGED', 'DELETED'] as const
export type EventType = typeof EVENT_TYPES[number]

export interface Policy { Events?: EventType[] }
export interface S3Config { AutoImportPolicy?: Policy, AutoExportPolicy?: Policy }
export interface Tag { Key: string, Value: string }

export interface DraRecord {
  AssociationId: string
  Lifecycle: Lifecycle
  FailureDetails?: { Message: string }
  FileSystemPath: string
  DataRepositoryPath: string
  BatchImportMetaDataOnCreate: boolean
  ImportedFileChunkSize: number
  S3?: S3Config
  Tags?: Tag[]
  /** Epoch seconds with milliseconds, as FSx's JSON timestamps. */
  CreationTime: number
}

/** Who this file system is, for ids and ARNs. */
export interface FsIdentity { id: string, region: string, account: string }

export const DEFAULT_CHUNK_SIZE_MIB = 1024
export const MAX_ASSOCIATIONS = 8
export const MAX_QUEUED_REQUESTS = 8

export const newAssociationId = (): string => 'dra-' + randomBytes(9).toString('hex').slice(0, 17)

export const associationArn = (fs: FsIdentity, id: string): string =>
  `arn:aws:fsx:${fs.region}:${fs.account}:association/${fs.id}/${id}`

export const fileSystemArn = (fs: FsIdentity): string => `arn:aws:fsx:${fs.region}:${fs.account}:file-system/${fs.id}`

export function associationView (fs: FsIdentity, r: DraRecord): Record<string, unknown> {
  return {
    AssociationId: r.AssociationId,
    ResourceARN: associationArn(fs, r.AssociationId),
    FileSystemId: fs.id,
    Lifecycle: r.Lifecycle,
    ...(r.FailureDetails !== undefined ? { FailureDetails: r.FailureDetails } : {}),
    FileSystemPath: r.FileSystemPath,
    DataRepositoryPath: r.DataRepositoryPath,
    BatchImportMetaDataOnCreate: r.BatchImportMetaDataOnCreate,
    ImportedFileChunkSize: r.ImportedFileChunkSize,
    ...(r.S3 !== undefined ? { S3: r.S3 } : {}),
    ...(r.Tags !== undefined && r.Tags.length > 0 ? { Tags: r.Tags } : {}),
    CreationTime: r.CreationTime
  }
}

/** The events of one direction's policy (none when the policy is absent). */
export function importEvents (r: DraRecord): EventType[] { return r.S3?.AutoImportPolicy?.Events ?? [] }
export function exportEvents (r: DraRecord): EventType[] { return r.S3?.AutoExportPolicy?.Events ?? [] }
