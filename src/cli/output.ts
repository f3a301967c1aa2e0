/** CLI output: human text by default, one JSON document with --json; errors to stderr. */
export function print (json: boolean, value: object, human: string): void {
  process.stdout.write(json ? JSON.stringify(value, null, 2) + '\n' : human.endsWith('\n') ? human : human + '\n')
}

export function fail (message: string, code = 1): never {
  process.stderr.write(`s3link: ${message}\n`)
  process.exit(code)
}
