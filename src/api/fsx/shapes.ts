/**
 * The FSx request shapes s3link serves, as zod schemas carrying the API model's lengths, patterns
 * and enums (botocore's fsx/2018-03-01 service model; spec/fsx-dra.md §3–9). Unknown fields are
 * refused, so a misspelt parameter is an error rather than silently ignored.
 */
import { z } from 'zod'
import { EVENT_TYPES } from '../../dra/association'

// The model's Namespace/ArchivePath pattern: no NUL, U+0085, U+2028, U+2029, CR or LF.
const FORBIDDEN = /[\u0000\u0085\u2028\u2029\r\n]/
const pathString = (min: number, max: number): z.ZodString => z.string().min(min).max(max)
  .refine((s) => !FORBIDDEN.test(s), 'must not contain NUL, CR, LF, U+0085, U+2028 or U+2029') as unknown as z.ZodString

export const FileSystemId = z.string().min(11).max(21).regex(/^(fs-[0-9a-f]{8,})$/, 'must be fs- followed by hex digits')
export const AssociationId = z.string().min(13).max(23).regex(/^(dra-[0-9a-f]{8,})$/, 'must be dra- followed by hex digits')
// The model's pattern reads [A-za-z0-9_.-]; we accept what it means to say.
export const ClientRequestToken = z.string().min(1).max(63).regex(/^[A-Za-z0-9_.-]+$/, 'may contain only letters, digits, _, . and -')
export const Namespace = pathString(1, 4096)
export const ArchivePath = pathString(3, 4357)
export const ChunkSize = z.number().int().min(1).max(512000)
const Events = z.array(z.enum(EVENT_TYPES)).max(3).refine((e) => new Set(e).size === e.length, 'must not repeat an event type')
const Policy = z.object({ Events: Events.optional() }).strict()
export const S3Config = z.object({ AutoImportPolicy: Policy.optional(), AutoExportPolicy: Policy.optional() }).strict()

const TAG_TEXT = /^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$/u
export const TagKey = z.string().min(1).max(128).regex(TAG_TEXT, 'may contain only letters, digits, spaces and _ . : / = + - @')
export const Tag = z.object({ Key: TagKey, Value: z.string().min(0).max(256).regex(TAG_TEXT, 'may contain only letters, digits, spaces and _ . : / = + - @') }).strict()
export const Tags = z.array(Tag).min(1).max(50)
export const ResourceARN = z.string().min(8).max(512)

const FilterValue = z.string().min(1).max(128).regex(/^[0-9a-zA-Z*.\\/?\-_]*$/, 'may contain only letters, digits and * . \\ / ? - _')
const FILTER_NAMES = ['file-system-id', 'backup-type', 'file-system-type', 'volume-id', 'data-repository-type', 'file-cache-id', 'file-cache-type'] as const
export const Filters = z.array(z.object({ Name: z.enum(FILTER_NAMES).optional(), Values: z.array(FilterValue).max(20).optional() }).strict()).max(10)
export const NextToken = z.string().min(1).max(255).regex(/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/, 'is not a token this API returned')

export const CreateDataRepositoryAssociation = z.object({
  FileSystemId,
  FileSystemPath: Namespace.optional(),
  DataRepositoryPath: ArchivePath,
  BatchImportMetaDataOnCreate: z.boolean().optional(),
  ImportedFileChunkSize: ChunkSize.optional(),
  S3: S3Config.optional(),
  ClientRequestToken: ClientRequestToken.optional(),
  Tags: Tags.optional()
}).strict()

export const UpdateDataRepositoryAssociation = z.object({
  AssociationId,
  ClientRequestToken: ClientRequestToken.optional(),
  ImportedFileChunkSize: ChunkSize.optional(),
  S3: S3Config.optional()
}).strict()

export const DeleteDataRepositoryAssociation = z.object({
  AssociationId,
  ClientRequestToken: ClientRequestToken.optional(),
  DeleteDataInFileSystem: z.boolean().optional()
}).strict()

export const DescribeDataRepositoryAssociations = z.object({
  AssociationIds: z.array(AssociationId).max(50).optional(),
  Filters: Filters.optional(),
  MaxResults: z.number().int().min(1).max(25).optional(),
  NextToken: NextToken.optional()
}).strict()

export const DescribeFileSystems = z.object({
  FileSystemIds: z.array(FileSystemId).max(50).optional(),
  MaxResults: z.number().int().min(1).max(2147483647).optional(),
  NextToken: NextToken.optional()
}).strict()

export const TagResource = z.object({ ResourceARN, Tags }).strict()
export const UntagResource = z.object({ ResourceARN, TagKeys: z.array(TagKey).min(1).max(50) }).strict()
export const ListTagsForResource = z.object({ ResourceARN, MaxResults: z.number().int().min(1).optional(), NextToken: NextToken.optional() }).strict()
