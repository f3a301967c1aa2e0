/**
 * `s3link init`: creates a file system — its state directory (database, contents, secrets), its
 * identity (`fs-` + 17 hex digits) and admin API credentials, its config file, its mountpoint.
 * Nothing is written until every check has passed, so a refused init changes nothing.
 */
import fs from 'node:fs'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { Store } from '../store/db'
import { META_FS } from '../store/keys'
import { UsageError } from '../util/errors'
import { type Config, ConfigSchema, NAME_PATTERN, defaultConfigPath, defaultStateDir, renderConfig } from './config'
import { writeSecretFile } from './secrets'

export interface FsMeta {
  id: string
  name: string
  created: string
}

export interface InitOptions {
  name: string
  mountpoint?: string
  stateDir?: string
  config?: string
}

export interface InitResult {
  id: string
  name: string
  configPath: string
  stateDir: string
  mountpoint: string
}

export const newFsId = (): string => 'fs-' + randomBytes(9).toString('hex').slice(0, 17)

export async function initFileSystem (opts: InitOptions): Promise<InitResult> {
  if (!NAME_PATTERN.test(opts.name)) {
    throw new UsageError(`invalid file system name "${opts.name}": use lower-case letters, digits, - and _ (at most 63)`)
  }
  if (opts.mountpoint === undefined) throw new UsageError('--mountpoint DIR is required')
  const mountpoint = path.resolve(opts.mountpoint)
  const stateDir = path.resolve(opts.stateDir ?? defaultStateDir(opts.name))
  const configPath = path.resolve(opts.config ?? defaultConfigPath(opts.name))
  if (await exists(configPath)) throw new UsageError(`a config already exists at ${configPath}: file system ${opts.name} exists`)
  if (await exists(path.join(stateDir, 'db'))) throw new UsageError(`state directory ${stateDir} already holds a file system`)
  if (await exists(mountpoint) && !(await fs.promises.stat(mountpoint)).isDirectory()) {
    throw new UsageError(`mountpoint ${mountpoint} exists and is not a directory`)
  }
  const config: Config = ConfigSchema.parse({ name: opts.name, mountpoint, stateDir })

  const meta: FsMeta = { id: newFsId(), name: opts.name, created: new Date().toISOString() }
  await fs.promises.mkdir(stateDir, { recursive: true, mode: 0o700 })
  const store = await Store.open(path.join(stateDir, 'db'))
  try {
    await store.batch([{ type: 'put', key: META_FS, value: meta }], { sync: true })
  } finally {
    await store.close()
  }
  await writeSecretFile(path.join(stateDir, 'credentials.json'), JSON.stringify(newAdminCredentials(), null, 2) + '\n')
  await fs.promises.mkdir(mountpoint, { recursive: true })
  await fs.promises.mkdir(path.dirname(configPath), { recursive: true })
  await fs.promises.writeFile(configPath, renderConfig(config), { mode: 0o644, flag: 'wx' })
  return { id: meta.id, name: opts.name, configPath, stateDir, mountpoint }
}

/** Admin credentials of the control API: an AWS-style key pair (SigV4) and a bearer token. */
function newAdminCredentials (): { accessKeyId: string, secretAccessKey: string, token: string } {
  return {
    accessKeyId: 'S3L' + randomBytes(10).toString('hex').toUpperCase().slice(0, 17),
    secretAccessKey: randomBytes(30).toString('base64url'),
    token: randomBytes(32).toString('base64url')
  }
}

async function exists (p: string): Promise<boolean> {
  return await fs.promises.access(p).then(() => true, () => false)
}
