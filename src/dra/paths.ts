/**
 * The path rules of DRAs (spec/fsx-dra.md §4.3, §9), pure functions:
 *  - FileSystemPath: a leading `/`; components are POSIX names (no empty, `.` or `..` component,
 *    each at most 255 bytes). A trailing `/` is allowed and kept as given (Terraform compares the
 *    value it sent with what Describe returns).
 *  - DataRepositoryPath: `s3://bucket/` or `s3://bucket/prefix/`; a trailing `/` is appended; the
 *    prefix's components must be importable names (same rules), and the prefix at most 1,024 bytes
 *    (S3's key limit).
 *  - Overlap is by path component: `/ns1` overlaps `/ns1/ns2` (and `/`, everything) but not
 *    `/ns10`; `s3://b/p/` overlaps `s3://b/p/sub/` but not `s3://b/p2/` nor `s3://c/p/`.
 */
import { bucketNameProblem } from '../repo/bucket-name'
import { badRequest } from './errors'

const NAME_MAX = 255
const KEY_MAX = 1024

/** The components of a file system path, or a BadRequest saying what is wrong. */
export function fileSystemPathComponents (p: string): string[] {
  if (!p.startsWith('/')) throw badRequest(`FileSystemPath ${JSON.stringify(p)} must begin with /`)
  if (p === '/') return []
  // One trailing / is allowed; what is left must be names (so `//` is an empty name, not the root).
  const parts = (p.endsWith('/') ? p.slice(1, -1) : p.slice(1)).split('/')
  checkComponents(parts, 'FileSystemPath', p)
  return parts
}

export interface RepositoryPath { bucket: string, prefix: string, components: string[], normalized: string }

/** Parses `s3://bucket[/prefix][/]`: the normalized path always ends with `/`. */
export function parseRepositoryPath (p: string): RepositoryPath {
  const m = /^s3:\/\/([^/]*)(?:\/(.*))?$/.exec(p)
  if (m === null) throw badRequest(`DataRepositoryPath ${JSON.stringify(p)} must have the form s3://bucket/ or s3://bucket/prefix/`)
  const bucket = m[1]
  const problem = bucketNameProblem(bucket)
  if (problem !== undefined) throw badRequest(`DataRepositoryPath ${JSON.stringify(p)}: "${bucket}" is not a valid S3 bucket name: ${problem}`)
  let prefix = m[2] ?? ''
  if (prefix !== '' && !prefix.endsWith('/')) prefix += '/'
  const components = prefix === '' ? [] : prefix.slice(0, -1).split('/')
  checkComponents(components, 'DataRepositoryPath', p)
  if (Buffer.byteLength(prefix) > KEY_MAX) throw badRequest(`DataRepositoryPath ${JSON.stringify(p)}: the prefix is longer than S3's ${KEY_MAX}-byte key limit`)
  return { bucket, prefix, components, normalized: `s3://${bucket}/${prefix}` }
}

function checkComponents (parts: string[], field: string, p: string): void {
  for (const part of parts) {
    if (part === '') throw badRequest(`${field} ${JSON.stringify(p)} has an empty component (//)`)
    if (part === '.' || part === '..') throw badRequest(`${field} ${JSON.stringify(p)} has a ${part} component`)
    if (Buffer.byteLength(part) > NAME_MAX) throw badRequest(`${field} ${JSON.stringify(p)} has a component longer than ${NAME_MAX} bytes`)
  }
}

/** True when one component list is a prefix of the other (equal included). */
export function overlaps (a: string[], b: string[]): boolean {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false
  return true
}

export function repositoryPathsOverlap (a: RepositoryPath, b: RepositoryPath): boolean {
  return a.bucket === b.bucket && overlaps(a.components, b.components)
}

/** The canonical form of a file system path (no trailing slash except for the root). */
export const canonicalFileSystemPath = (components: string[]): string => '/' + components.join('/')
