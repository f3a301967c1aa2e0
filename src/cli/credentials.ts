/**
 * `s3link credentials NAME`: shell lines that point AWS clients at a file system's FSx API, for
 * `eval "$(s3link credentials NAME)"` and then `aws fsx … --endpoint-url "$S3LINK_API_URL"`:
 * the admin key pair from STATE_DIR/credentials.json, the region the API signs with, and the
 * running daemon's TCP URL. AWS_SESSION_TOKEN and AWS_PROFILE are unset because either would make
 * the client sign with something else.
 */
import fs from 'node:fs'
import path from 'node:path'
import { loadConfig } from '../daemon/config'
import { callApi } from '../api/client'
import { socketPath, urlPath } from '../api/paths'
import { UsageError } from '../util/errors'

export interface ClientCredentials { accessKeyId: string, secretAccessKey: string, region: string, apiUrl: string }

export async function clientCredentials (configPath: string): Promise<ClientCredentials> {
  const config = await loadConfig(configPath)
  const file = path.join(config.stateDir, 'credentials.json')
  let keys: { accessKeyId?: unknown, secretAccessKey?: unknown }
  try {
    keys = JSON.parse(await fs.promises.readFile(file, 'utf8'))
  } catch (err) {
    throw new UsageError(`cannot read the admin credentials ${file}: ${(err as Error).message}`)
  }
  if (typeof keys.accessKeyId !== 'string' || typeof keys.secretAccessKey !== 'string') throw new UsageError(`${file} lacks accessKeyId or secretAccessKey`)
  const notRunning = new UsageError(`file system ${config.name} is not running (no API URL in ${urlPath(config.stateDir)}): start it with s3link mount ${config.name}`)
  const apiUrl = (await fs.promises.readFile(urlPath(config.stateDir), 'utf8').catch(() => '')).trim()
  if (apiUrl === '') throw notRunning
  // api.url outlives a daemon killed with -9: ask the daemon itself before handing out its URL.
  const alive = await callApi(socketPath(config.stateDir), 'GET', '/api/status').then((r) => r.status === 200, () => false)
  if (!alive) throw notRunning
  return { accessKeyId: keys.accessKeyId, secretAccessKey: keys.secretAccessKey, region: config.region, apiUrl }
}

/** `export NAME='value'` lines (and the unsets) for sh, bash and zsh. */
export function shellLines (c: ClientCredentials): string {
  const vars: Array<[string, string]> = [
    ['AWS_ACCESS_KEY_ID', c.accessKeyId],
    ['AWS_SECRET_ACCESS_KEY', c.secretAccessKey],
    ['AWS_DEFAULT_REGION', c.region],
    ['AWS_REGION', c.region],
    ['S3LINK_API_URL', c.apiUrl]
  ]
  return [...vars.map(([k, v]) => `export ${k}=${shellQuote(v)}`), 'unset AWS_SESSION_TOKEN AWS_PROFILE'].join('\n')
}

/** Single quotes keep everything literal in sh; a quote itself is closed, escaped and reopened. */
export const shellQuote = (s: string): string => `'${s.replace(/'/g, "'\\''")}'`
