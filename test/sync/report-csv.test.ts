// Completion report lines (spec/fsx-dra.md §18): RFC 4180 quoting plus FSx's formula guard, checked
// against the examples FSx publishes.
import t from 'tap'
import { csvField, reportLine } from '../../src/sync/report-csv'

t.test('FSx\'s published examples', async (t) => {
  t.equal(csvField('@filename.txt'), '"""@filename.txt"""')
  t.equal(csvField('+filename.txt'), '"""+filename.txt"""')
  t.equal(csvField('-filename.txt'), '"""-filename.txt"""')
  t.equal(csvField('=filename.txt'), '"""=filename.txt"""')
  t.equal(csvField('file,name.txt'), '"file,name.txt"')
  t.equal(csvField('file"name.txt'), '"file""name.txt"')
})

t.test('plain paths stay as they are; line breaks are quoted; the guard looks only at the start', async (t) => {
  t.equal(csvField('dir1/myLargeFile'), 'dir1/myLargeFile')
  t.equal(csvField('a b/ü ✓.txt'), 'a b/ü ✓.txt')
  t.equal(csvField('dir/@x=1+2-3'), 'dir/@x=1+2-3')
  t.equal(csvField('two\nlines'), '"two\nlines"')
  t.equal(csvField('cr\rhere'), '"cr\rhere"')
  t.equal(csvField(''), '')
  t.equal(csvField('@a,"b"'), '"""@a,""b"""""', 'guarded, then escaped once')
})

t.test('a report line: FilePath,FileStatus,ErrorCode and a newline, no header', async (t) => {
  t.equal(reportLine('dir1/myLargeFile', 'failed', 'FileSizeTooLarge'), 'dir1/myLargeFile,failed,FileSizeTooLarge\n')
  t.equal(reportLine('ns1/a,b', 'failed', 'S3ImportObjectPathNotPosixCompliant'), '"ns1/a,b",failed,S3ImportObjectPathNotPosixCompliant\n')
})
