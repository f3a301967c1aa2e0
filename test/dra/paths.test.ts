/**
 * The DRA path rules (spec/fsx-dra.md §4.3, §9, §29.2) as pure functions: what a file system path
 * and a data repository path may be, how the repository path is normalized, and overlap by path
 * component.
 */
import t, { type Test } from 'tap'
import {
  canonicalFileSystemPath, fileSystemPathComponents, overlaps, parseRepositoryPath, repositoryPathsOverlap
} from '../../src/dra/paths'
import { FsxError } from '../../src/dra/errors'

/** Asserts fn throws a BadRequest whose message matches. */
function badRequest (t: Test, fn: () => unknown, message: RegExp, what: string): void {
  try {
    fn()
    t.fail(`${what}: accepted`)
  } catch (err) {
    t.ok(err instanceof FsxError, `${what}: an FsxError`)
    t.equal((err as FsxError).type, 'BadRequest', `${what}: BadRequest`)
    t.match((err as FsxError).message, message, `${what}: says what is wrong`)
  }
}

t.test('FileSystemPath: a leading / is required; components are POSIX names', async (t) => {
  t.same(fileSystemPathComponents('/'), [])
  t.same(fileSystemPathComponents('/ns1'), ['ns1'])
  t.same(fileSystemPathComponents('/ns1/path1/'), ['ns1', 'path1'], 'a trailing / is allowed')
  t.same(fileSystemPathComponents('/with space/ünï'), ['with space', 'ünï'])
  t.same(fileSystemPathComponents('/' + 'a'.repeat(255)), ['a'.repeat(255)], 'a 255-byte name')
  badRequest(t, () => fileSystemPathComponents('ns1/path1'), /FileSystemPath "ns1\/path1" must begin with \//, 'no leading /')
  badRequest(t, () => fileSystemPathComponents(''), /must begin with \//, 'empty')
  badRequest(t, () => fileSystemPathComponents('/a//b'), /empty component/, 'an empty component')
  badRequest(t, () => fileSystemPathComponents('//'), /empty component/, 'only slashes')
  badRequest(t, () => fileSystemPathComponents('/a/./b'), /has a \. component/, 'a . component')
  badRequest(t, () => fileSystemPathComponents('/a/..'), /has a \.\. component/, 'a .. component')
  badRequest(t, () => fileSystemPathComponents('/' + 'é'.repeat(128)), /longer than 255 bytes/, 'a 256-byte name')
})

t.test('DataRepositoryPath: s3://bucket[/prefix], a trailing / added', async (t) => {
  t.match(parseRepositoryPath('s3://mybucket'), { bucket: 'mybucket', prefix: '', components: [], normalized: 's3://mybucket/' })
  t.match(parseRepositoryPath('s3://mybucket/'), { bucket: 'mybucket', prefix: '', normalized: 's3://mybucket/' })
  t.match(parseRepositoryPath('s3://mybucket/myprefix'), { prefix: 'myprefix/', components: ['myprefix'], normalized: 's3://mybucket/myprefix/' })
  t.match(parseRepositoryPath('s3://mybucket/a/b/'), { prefix: 'a/b/', components: ['a', 'b'], normalized: 's3://mybucket/a/b/' })
  t.equal(parseRepositoryPath('s3://b.example-1/p').normalized, 's3://b.example-1/p/')
  badRequest(t, () => parseRepositoryPath('https://mybucket/p/'), /must have the form s3:\/\/bucket\//, 'another scheme')
  badRequest(t, () => parseRepositoryPath('S3://mybucket/p/'), /must have the form/, 'upper-case scheme')
  badRequest(t, () => parseRepositoryPath('s3:/mybucket/'), /must have the form/, 'one slash')
  badRequest(t, () => parseRepositoryPath('s3:///p/'), /"" is not a valid S3 bucket name/, 'no bucket')
  badRequest(t, () => parseRepositoryPath('s3://myBucket/p/'), /"myBucket" is not a valid S3 bucket name: may contain only lower-case/, 'upper-case bucket')
  badRequest(t, () => parseRepositoryPath('s3://ab/'), /must be 3 to 63 characters/, 'short bucket')
  badRequest(t, () => parseRepositoryPath('s3://b1b/p//q/'), /empty component/, 'an empty prefix component')
  badRequest(t, () => parseRepositoryPath('s3://b1b/p/../q/'), /\.\. component/, 'a .. component')
  badRequest(t, () => parseRepositoryPath('s3://b1b/' + 'k/'.repeat(513)), /1024-byte key limit/, 'a prefix over S3\'s key limit')
})

t.test('overlap is by path component', async (t) => {
  const fsp = fileSystemPathComponents
  t.ok(overlaps(fsp('/ns1'), fsp('/ns1/ns2')), '/ns1 blocks /ns1/ns2')
  t.ok(overlaps(fsp('/ns1/ns2'), fsp('/ns1')), 'both ways')
  t.ok(overlaps(fsp('/ns1'), fsp('/ns1/')), 'the same directory')
  t.notOk(overlaps(fsp('/ns1'), fsp('/ns10')), '/ns1 does not block /ns10')
  t.notOk(overlaps(fsp('/ns1/a'), fsp('/ns1/b')), 'siblings')
  t.ok(overlaps(fsp('/'), fsp('/anything/at/all')), '/ overlaps everything')

  const repo = parseRepositoryPath
  t.ok(repositoryPathsOverlap(repo('s3://b1b/p/'), repo('s3://b1b/p/sub')), 's3://b/p/ blocks s3://b/p/sub')
  t.ok(repositoryPathsOverlap(repo('s3://b1b/p/sub'), repo('s3://b1b/p')), 'both ways, with or without the trailing /')
  t.ok(repositoryPathsOverlap(repo('s3://b1b'), repo('s3://b1b/p/')), 'the bucket root overlaps every prefix')
  t.notOk(repositoryPathsOverlap(repo('s3://b1b/p/'), repo('s3://b1b/p2/')), 'p does not block p2')
  t.notOk(repositoryPathsOverlap(repo('s3://b1b/p/'), repo('s3://b2b/p/')), 'another bucket')
  t.notOk(repositoryPathsOverlap(repo('s3://b1b/'), repo('s3://b1b2/')), 'a bucket whose name extends the other\'s')
})

t.test('canonical file system path', async (t) => {
  t.equal(canonicalFileSystemPath([]), '/')
  t.equal(canonicalFileSystemPath(fileSystemPathComponents('/ns1/path1/')), '/ns1/path1')
})
