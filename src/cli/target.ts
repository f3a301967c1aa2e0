/**
 * Which file system a management command (`bucket …`, `dra …`) talks to: `--config FILE`, else
 * `--fs NAME`, else the only config in the config directory (several or none: an error asking for
 * --fs). The command then reaches that daemon's API over its Unix socket.
 */
import fs from 'node:fs'
import path from 'node:path'
import type { Command } from 'commander'
import { configDir, defaultConfigPath, loadConfig } from '../daemon/config'
import { socketPath } from '../api/paths'
import { UsageError } from '../util/errors'

export interface TargetOptions { fs?: string, config?: string, json?: boolean }

/** Adds --fs, --config and --json to a command. */
export function targetOptions (cmd: Command): Command {
  return cmd
    .option('--fs <name>', 'file system name (default: the only one configured)')
    .option('--config <file>', 'config file of the file system')
    .option('--json', 'print JSON')
}

/** Resolves the file system's API socket from --config / --fs / the only configured one. */
export async function socketOf (o: TargetOptions): Promise<string> {
  const config = await loadConfig(o.config ?? (o.fs !== undefined ? defaultConfigPath(o.fs) : await onlyConfig()))
  return socketPath(config.stateDir)
}

async function onlyConfig (): Promise<string> {
  const dir = configDir()
  const names = (await fs.promises.readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.yaml')).sort()
  if (names.length === 1) return path.join(dir, names[0])
  if (names.length === 0) throw new UsageError(`no file system is configured in ${dir}: create one with s3link init, or give --config FILE`)
  throw new UsageError(`several file systems are configured in ${dir} (${names.map((n) => n.slice(0, -5)).join(', ')}): choose one with --fs NAME`)
}
