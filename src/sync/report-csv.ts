/**
 * Lines of an FSx completion report, format REPORT_CSV_20191124 (spec/fsx-dra.md §18): the fields
 * FilePath, FileStatus, ErrorCode, no header row, quoted as RFC 4180 says (a field holding `"`, `,`
 * or a line break is wrapped in `"` and its `"` doubled). FSx also guards against spreadsheet
 * formula injection: a value beginning with @ + - or = is first wrapped in `"`, and that is then
 * escaped like any other `"`, so `@x` becomes `"""@x"""` (the published examples).
 */
const FORMULA_START = /^[@+\-=]/
const NEEDS_QUOTES = /[",\r\n]/

export function csvField (value: string): string {
  const guarded = FORMULA_START.test(value) ? `"${value}"` : value
  return NEEDS_QUOTES.test(guarded) ? `"${guarded.replace(/"/g, '""')}"` : guarded
}

/** One report line, newline included (FSx's example lines end in a plain newline). */
export function reportLine (filePath: string, status: string, errorCode: string): string {
  return `${csvField(filePath)},${csvField(status)},${csvField(errorCode)}\n`
}
