/**
 * What a task covers (spec/fsx-dra.md §16.1); no Paths means every DRA.
 *
 * Import: Paths are S3 paths `s3://bucket/prefix`, each inside the repository of one of the file
 * system's DRAs. A path is an S3 prefix, taken as given (`s3://b/p/x` lists `p/x`, `p/x/…`, and
 * `p/xy` too); only the DRA's own path without its trailing slash (`s3://b/p` for `s3://b/p/`) is
 * read as the DRA's prefix, so that it never reaches keys beside the repository.
 *
 * Export: Paths are file-system paths relative to the mount, each inside a DRA's directory.
 *
 * Release: file-system paths as for export; `/`, or a directory above DRAs, stands for the
 * directories of the DRAs below it (FSx: `/` releases from the whole file system; only files in
 * DRAs can have been exported, so nothing else could be released anyway).
 */
import type { DraRecord } from '../dra/association'
import { badRequest } from '../dra/errors'
import { fileSystemPathComponents, overlaps, parseRepositoryPath } from '../dra/paths'
import { bucketNameProblem } from '../repo/bucket-name'

export interface S3Path { bucket: string, prefix: string }

/** Where a DRA can be imported from (its directory and bucket are there). */
export const IMPORTABLE = new Set(['AVAILABLE', 'UPDATING'])

/** Parses `s3://bucket[/prefix]`; `field` names the parameter in the BadRequest. */
export function parseS3Path (p: string, field: string): S3Path {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/s.exec(p)
  if (m === null) throw badRequest(`${field}: ${JSON.stringify(p)} is not an S3 path (s3://bucket/prefix)`)
  const problem = bucketNameProblem(m[1])
  if (problem !== undefined) throw badRequest(`${field}: ${JSON.stringify(p)}: "${m[1]}" is not a valid S3 bucket name: ${problem}`)
  return { bucket: m[1], prefix: m[2] ?? '' }
}

/** The prefix to list for `p` inside `dra`'s repository, or undefined when p is not inside it. */
export function prefixInside (dra: DraRecord, p: S3Path): string | undefined {
  const repo = parseRepositoryPath(dra.DataRepositoryPath)
  if (p.bucket !== repo.bucket) return undefined
  if (p.prefix.startsWith(repo.prefix)) return p.prefix
  if (p.prefix + '/' === repo.prefix) return repo.prefix
  return undefined
}

export function draHolding (dras: DraRecord[], p: S3Path): DraRecord | undefined {
  return dras.find((d) => prefixInside(d, p) !== undefined)
}

export interface ImportTarget { dra: DraRecord, listPrefix: string }

/**
 * The DRA and prefix each path imports, worked in the order given; throws (a fatal error of the
 * task) when a path lies outside every DRA, e.g. its DRA was deleted after the task was created.
 */
export function importTargets (dras: DraRecord[], paths: string[]): ImportTarget[] {
  if (paths.length === 0) {
    const usable = dras.filter((d) => IMPORTABLE.has(d.Lifecycle))
    if (usable.length === 0) throw new Error('no data repository association of the file system is AVAILABLE')
    return usable.map((dra) => ({ dra, listPrefix: parseRepositoryPath(dra.DataRepositoryPath).prefix }))
  }
  return paths.map((path) => {
    const p = parseS3Path(path, 'Paths')
    const dra = draHolding(dras, p)
    if (dra === undefined) throw new Error(`${path} lies outside every data repository association of the file system`)
    return { dra, listPrefix: prefixInside(dra, p) as string }
  })
}

/**
 * Export Paths are file-system paths relative to the mount point (FSx: `/mnt/fsx/path1` is `path1`);
 * a leading or trailing `/` is accepted. Returns the path from the mount root (`/path1`).
 */
export function parseExportPath (p: string): string {
  const rel = p.replace(/^\/+/, '').replace(/\/+$/, '')
  if (rel === '') return '/'
  for (const c of rel.split('/')) {
    if (c === '' || c === '.' || c === '..') throw badRequest(`Paths: ${JSON.stringify(p)} must be a path in the file system without empty, . or .. components (path1/dir for /mnt/fsx/path1/dir)`)
  }
  return '/' + rel
}

/** The DRA whose directory holds `path` (from the mount root), by component. */
export function draOfFsPath (dras: DraRecord[], path: string): DraRecord | undefined {
  const comps = path.split('/').filter((c) => c !== '')
  return dras.find((d) => {
    const dir = fileSystemPathComponents(d.FileSystemPath)
    return dir.length <= comps.length && overlaps(dir, comps)
  })
}

export interface ExportTarget { dra: DraRecord, path: string }

/**
 * The DRA and path (from the mount root) of each export path; no Paths: every DRA's directory.
 * Throws BadRequest for a path outside every DRA.
 */
export function exportTargets (dras: DraRecord[], paths: string[]): ExportTarget[] {
  if (paths.length === 0) return dras.map((dra) => ({ dra, path: '/' + fileSystemPathComponents(dra.FileSystemPath).join('/') }))
  return paths.map((p) => {
    const path = parseExportPath(p)
    const dra = draOfFsPath(dras, path)
    if (dra === undefined) throw badRequest(`Paths: ${p} lies outside every data repository association (${dras.map((d) => d.FileSystemPath).join(', ')})`)
    return { dra, path }
  })
}

/**
 * The paths (from the mount root) a release task walks, each DRA directory at most once; no Paths:
 * every DRA's directory. Throws BadRequest for a path neither inside nor above a DRA.
 */
export function releaseTargets (dras: DraRecord[], paths: string[]): string[] {
  const dirOf = (d: DraRecord): string => '/' + fileSystemPathComponents(d.FileSystemPath).join('/')
  if (paths.length === 0) return dras.map(dirOf).sort()
  const out: string[] = []
  for (const p of paths) {
    const path = parseExportPath(p)
    let found: string[]
    if (draOfFsPath(dras, path) !== undefined) found = [path]
    else {
      const base = path === '/' ? '' : path
      found = dras.map(dirOf).filter((d) => d.startsWith(base + '/')).sort()
    }
    if (found.length === 0) throw badRequest(`Paths: ${p} lies outside every data repository association (${dras.map((d) => d.FileSystemPath).join(', ')})`)
    for (const f of found) if (!out.includes(f)) out.push(f)
  }
  return out
}
