/**
 * The s3link command. Each subcommand parses its arguments (commander), does one thing, prints
 * text or --json, and exits non-zero with a one-line message on stderr when it cannot.
 */
import { Command, CommanderError } from 'commander'
import { initFileSystem } from '../daemon/init'
import { defaultConfigPath } from '../daemon/config'
import { UsageError } from '../util/errors'
import { StoreLockedError } from '../store/db'
import { print, fail } from './output'
import { runForeground, runBackground, stopDaemon, status, type FsStatus } from './mount'
import { runDemo } from './demo'
import { registerBucketCommands } from './bucket'
import { registerDraCommands } from './dra'
import { registerHsmCommands } from './hsm'
import { registerTaskCommands } from './task'
import { clientCredentials, shellLines } from './credentials'

function program (): Command {
  const cli = new Command('s3link')
    .description('Mount a POSIX file system with FUSE and link its directories to S3 prefixes')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s.startsWith('error:') ? `s3link: ${s}` : s) })

  cli.command('init')
    .description('create a file system: identity, state directory, admin credentials, config')
    .argument('<name>', 'file system name (lower-case letters, digits, - and _)')
    .requiredOption('--mountpoint <dir>', 'where it will be mounted (created if missing)')
    .option('--state-dir <dir>', 'database, contents and secrets (default /var/lib/s3link/NAME)')
    .option('--config <file>', 'config file to write (default /etc/s3link/NAME.yaml)')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { mountpoint: string, stateDir?: string, config?: string, json?: boolean }) => {
      const r = await initFileSystem({ name, mountpoint: o.mountpoint, stateDir: o.stateDir, config: o.config })
      print(o.json === true, r,
        `created file system ${r.name} (${r.id})\n  config:     ${r.configPath}\n  state:      ${r.stateDir}\n` +
        `  mountpoint: ${r.mountpoint}\nmount it with: s3link mount ${r.name}${o.config !== undefined ? ` --config ${r.configPath}` : ''}`)
    })

  cli.command('mount')
    .description('run the daemon in the foreground (or --background: start it and wait until mounted)')
    .argument('<name>', 'file system name')
    .option('--config <file>', 'config file (default /etc/s3link/NAME.yaml)')
    .option('--mountpoint <dir>', 'mount here instead of the configured mountpoint')
    .option('--background', 'start the daemon detached and return once the mount is up')
    .action(async (name: string, o: { config?: string, mountpoint?: string, background?: boolean }) => {
      const config = o.config ?? defaultConfigPath(name)
      if (o.background === true) await runBackground(name, config, o.mountpoint)
      else await runForeground(config, o.mountpoint)
    })

  cli.command('unmount')
    .description('stop the daemon of a file system cleanly and wait until it is unmounted')
    .argument('<name>', 'file system name')
    .option('--config <file>', 'config file (default /etc/s3link/NAME.yaml)')
    .action(async (name: string, o: { config?: string }) => {
      await stopDaemon(o.config ?? defaultConfigPath(name))
    })

  cli.command('status')
    .description('show whether a file system is mounted and where its state lives')
    .argument('<name>', 'file system name')
    .option('--config <file>', 'config file (default /etc/s3link/NAME.yaml)')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { config?: string, json?: boolean }) => {
      const s = await status(o.config ?? defaultConfigPath(name))
      print(o.json === true, s, `${s.name}${s.id !== undefined ? ` (${s.id})` : ''}: ${s.mounted ? 'mounted' : 'not mounted'} at ${s.mountpoint}` +
        `${s.pid !== undefined ? ` (daemon pid ${s.pid})` : ''}\n  state: ${s.stateDir}` +
        `${s.apiUrl !== undefined ? `\n  API:   ${s.apiUrl} (and ${s.apiSocket ?? ''})` : ''}` + queueLines(s.queues) + cacheLine(s.cache))
    })

  registerBucketCommands(cli)
  registerDraCommands(cli)
  registerHsmCommands(cli)
  registerTaskCommands(cli)

  cli.command('credentials')
    .description('print shell lines that set the admin credentials, region and API URL of a running file system, ' +
      'for eval "$(s3link credentials NAME)" and then aws fsx … --endpoint-url "$S3LINK_API_URL". ' +
      'The output contains the secret access key: do not paste it into logs or tickets')
    .argument('<name>', 'file system name')
    .option('--config <file>', 'config file (default /etc/s3link/NAME.yaml)')
    .option('--json', 'print JSON (also with the secret)')
    .action(async (name: string, o: { config?: string, json?: boolean }) => {
      const c = await clientCredentials(o.config ?? defaultConfigPath(name))
      print(o.json === true, c, shellLines(c))
    })

  cli.command('demo')
    .description('the two-minute tour: a local S3 server and a mounted s3link file system, no AWS account')
    .option('--mountpoint <dir>', 'where to mount', '/mnt/s3link-demo')
    .option('--state-dir <dir>', 'state of the demo file system and its S3 server', '/var/lib/s3link/demo')
    .option('--s3-port <port>', 'port of the local S3 server (0 = any free one)', '4568')
    .action(async (o: { mountpoint: string, stateDir: string, s3Port: string }) => {
      const port = Number(o.s3Port)
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--s3-port must be a port number, not ${o.s3Port}`)
      await runDemo({ mountpoint: o.mountpoint, stateDir: o.stateDir, s3Port: port })
    })
  return cli
}

/** The sync queues in one line each: what S3 has not got yet, what S3 told us that is not applied. */
function queueLines (q: FsStatus['queues']): string {
  if (q === undefined) return ''
  const age = (seconds: number): string => seconds === 0 ? '' : `, oldest ${seconds < 90 ? `${Math.round(seconds)} s` : `${Math.round(seconds / 60)} min`}`
  return `\n  export: ${q.export.queued} queued${age(q.export.oldestAgeSeconds)}, ${(q.export.bytesPending / 2 ** 20).toFixed(1)} MiB pending, ${q.export.failures} failures since start` +
    `\n  import: ${q.import.queued} queued${age(q.import.oldestAgeSeconds)}`
}

function cacheLine (c: FsStatus['cache']): string {
  if (c === undefined) return ''
  const mib = (n: number): string => `${(n / 2 ** 20).toFixed(1)} MiB`
  const counting = c.counting === true ? ' (still counting files from before the cache)' : ''
  if (c.capacity === undefined) return `\n  cache:  ${mib(c.bytes)} local, unbounded${counting}`
  return `\n  cache:  ${mib(c.bytes)} of ${mib(c.capacity)} (${Math.round(100 * c.bytes / c.capacity)}%), ` +
    `releases above ${mib(c.highWatermarkBytes ?? 0)} down to ${mib(c.lowWatermarkBytes ?? 0)}; ${c.evictions} files released (${mib(c.evictedBytes)})${counting}`
}

export async function main (argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv, { from: 'user' })
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode)
    if (err instanceof UsageError || err instanceof StoreLockedError) fail(err.message)
    fail(`unexpected error: ${(err as Error).stack ?? String(err)}`)
  }
}
