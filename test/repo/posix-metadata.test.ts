import t from 'tap'
import { decodePosixMetadata, encodePosixMetadata, entryTypeOf, importedMode } from '../../src/repo/posix-metadata'
import { NOT_POSIX, keyToPath, pathToKey } from '../../src/repo/key-mapping'
import { hsmStateText, IMPORTED_RELEASED, HS_EXISTS, HS_ARCHIVED, HS_DIRTY } from '../../src/namespace/hsm'

t.test('FSx metadata decodes: octal mode with type bits, ids, ns or ms times', async (t) => {
  t.same(decodePosixMetadata({
    'file-permissions': '0100664', 'file-owner': '500', 'file-group': '501',
    'file-atime': '1595002920000000000ns', 'file-mtime': '1595002920123'
  }), { mode: 0o100664, uid: 500, gid: 501, atimeNs: 1595002920000000000n, mtimeNs: 1595002920123000000n })
  t.same(decodePosixMetadata({ 'file-permissions': '0040755' }), { mode: 0o040755 })
  t.equal(decodePosixMetadata({ 'file-permissions': '0104755' }).mode, 0o100755, 'setuid is not imported')
  t.same(decodePosixMetadata({}), {}, 'no metadata: nothing (defaults are the importer\'s)')
  t.same(decodePosixMetadata({ 'file-permissions': '9999', 'file-owner': '-1', 'file-group': 'x', 'file-mtime': '12abc' }), {}, 'malformed values are ignored one by one')
  t.same(decodePosixMetadata({ 'file-permissions': '0060644' }), {}, 'a device type is not importable')
})

t.test('encoding is what FSx writes and decodes back', async (t) => {
  const e = { mode: 0o100640, uid: 1000, gid: 100, atimeNs: 1700000000123456789n, mtimeNs: 1700000000987654321n }
  const meta = encodePosixMetadata(e)
  t.same(meta, {
    'file-permissions': '0100640', 'file-owner': '1000', 'file-group': '100',
    'file-atime': '1700000000123456789ns', 'file-mtime': '1700000000987654321ns', 'user-agent': 's3link'
  })
  t.same(decodePosixMetadata(meta), e)
  t.equal(encodePosixMetadata({ ...e, mode: 0o40755 })['file-permissions'], '0040755')
  t.equal(encodePosixMetadata({ ...e, mode: 0o120777 })['file-permissions'], '0120777')
})

t.test('entry types and default modes', async (t) => {
  t.equal(entryTypeOf('a/b/', {}), 'directory')
  t.equal(entryTypeOf('a/link', { mode: 0o120777 }), 'symlink')
  t.equal(entryTypeOf('a/file', {}), 'file')
  t.equal(importedMode('file', {}), 0o100755, 'FSx default: 0755')
  t.equal(importedMode('directory', { mode: 0o040700 }), 0o040700)
})

t.test('keys map to paths below the prefix; non-POSIX keys are refused', async (t) => {
  t.same(keyToPath('p/', 'p/a/b.txt'), { components: ['a', 'b.txt'], directory: false })
  t.same(keyToPath('p/', 'p/a/'), { components: ['a'], directory: true })
  t.same(keyToPath('p/', 'p/'), { components: [], directory: true }, 'the prefix marker is the DRA directory')
  t.same(keyToPath('', 'top'), { components: ['top'], directory: false })
  for (const bad of ['p/a//b', 'p/./a', 'p/a/../b', 'p/' + 'x'.repeat(256), 'p//']) {
    t.ok('problem' in keyToPath('p/', bad), `${bad.slice(0, 20)} is not a POSIX path`)
  }
  t.ok('problem' in keyToPath('p/', 'q/a'), 'outside the prefix')
  t.ok(!('problem' in keyToPath('p/', 'p/' + 'é'.repeat(127))), '254 bytes of UTF-8 is fine')
  t.equal(NOT_POSIX, 'S3ImportObjectPathNotPosixCompliant')
  t.equal(pathToKey('p/', ['a', 'b'], false), 'p/a/b')
  t.equal(pathToKey('p/', ['a'], true), 'p/a/')
  t.equal(pathToKey('p/', [], true), 'p/')
})

t.test('HSM states print as lfs hsm_state does', async (t) => {
  t.equal(hsmStateText(0), '(0x00000000)')
  t.equal(hsmStateText(IMPORTED_RELEASED), '(0x0000000d) released exists archived, archive_id:1')
  t.equal(hsmStateText(HS_EXISTS | HS_ARCHIVED), '(0x00000009) exists archived, archive_id:1')
  t.equal(hsmStateText(HS_EXISTS | HS_DIRTY | HS_ARCHIVED), '(0x0000000b) exists dirty archived, archive_id:1')
})
