/**
 * ClientRequestToken of CreateDataRepositoryTask, as src/dra/associations.ts does it for DRAs: a
 * token seen before with the same parameters answers with the task it created (nothing runs twice);
 * with other parameters it is an IncompatibleParameterError naming the first parameter that differs.
 */
import { FsxError } from '../dra/errors'

export interface TaskToken { fingerprint: Record<string, string>, TaskId: string }

/** Each top-level parameter but the token, as canonical JSON (key order does not matter). */
export function fingerprintOf (input: object): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(input)) if (k !== 'ClientRequestToken' && v !== undefined) out[k] = canonicalJson(v)
  return out
}

export function checkSameRequest (seen: TaskToken, fingerprint: Record<string, string>, token: string): void {
  const differing = Object.keys({ ...seen.fingerprint, ...fingerprint }).find((k) => seen.fingerprint[k] !== fingerprint[k])
  if (differing !== undefined) {
    throw new FsxError('IncompatibleParameterError', `ClientRequestToken ${token} was used with a different ${differing}`, { Parameter: differing })
  }
}

function canonicalJson (v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`
  }
  return JSON.stringify(v)
}
