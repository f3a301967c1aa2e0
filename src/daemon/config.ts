/**
 * One YAML file per file system, `/etc/s3link/<name>.yaml` unless told otherwise
 * ($S3LINK_CONFIG_DIR or --config). It holds where things are and how the daemon behaves; the file
 * system's durable facts (namespace, DRAs, buckets) live in its database, not here.
 */
import fs from 'node:fs'
import path from 'node:path'
import YAML from 'yaml'
import { z } from 'zod'
import { UsageError } from '../util/errors'
import { parseSize } from '../content/cache'

export const NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const

const absolutePath = z.string().refine((p) => path.isAbsolute(p), 'must be an absolute path')

export const ConfigSchema = z.object({
  name: z.string().regex(NAME_PATTERN, 'lower-case letters, digits, - and _, at most 63 characters'),
  mountpoint: absolutePath,
  stateDir: absolutePath,
  logLevel: z.enum(LOG_LEVELS).default('info'),
  /** Let users other than the daemon's see the mount (permissions are still checked by the kernel). */
  allowOther: z.boolean().default(true),
  /** A FUSE request unanswered after this long gets ETIMEDOUT instead of hanging the caller. */
  fuseTimeoutMs: z.number().int().min(1000).max(600_000).default(60_000),
  /**
   * Kernel readahead of the mount (its bdi's read_ahead_kb), 0 = the kernel's 128 KiB. More lets
   * the kernel ask for several chunks of a file at once while one is read (set as root only).
   */
  readAheadKiB: z.number().int().min(0).max(65_536).default(1024),
  /**
   * Let the kernel serve reads of local files itself from their content files (FUSE passthrough,
   * Linux 6.9+ and root; silently off elsewhere): local-disk speed, no request per read.
   */
  passthrough: z.boolean().default(true),
  /** How often changes of open files (size, times) are saved while nothing closes them. */
  flushIntervalMs: z.number().int().min(100).max(60_000).default(1000),
  /**
   * The control API's TCP listener (the Unix socket STATE_DIR/api.sock is always on). Loopback only:
   * the API manages credentials, and the design gives it no TLS. Port 0 = any free port; the URL
   * actually bound is written to STATE_DIR/api.url.
   */
  api: z.object({
    address: z.string().refine(isLoopback, 'must be a loopback address (127.0.0.0/8, ::1 or localhost)').default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(0)
  }).strict().default({}),
  /**
   * The STS endpoint used to assume bucket roles (default: the SDK's regional endpoint).
   * $S3LINK_STS_ENDPOINT overrides it (tests point it at a loopback STS).
   */
  stsEndpoint: z.string().url().optional(),
  /** The region this file system reports in ARNs and `s3link credentials` (clients sign with it). */
  region: z.string().regex(/^[a-z0-9-]{1,32}$/, 'an AWS region name such as us-east-1').default('us-east-1'),
  /**
   * How often AVAILABLE and MISCONFIGURED data repository associations are checked again (bucket
   * reachable with its credentials, directory still there). FSx recovers within 15 minutes.
   */
  draCheckIntervalMs: z.number().int().min(100).max(3_600_000).default(60_000),
  /**
   * How often DRAs with an automatic import policy compare their S3 prefix with their directory
   * (the change source that works with every S3 server).
   */
  importIntervalMs: z.number().int().min(100).max(86_400_000).default(30_000),
  /**
   * An S3 request whose connection stays silent this long fails (and is retried like any failure):
   * a server that stops answering must not hold an export or a load for ever.
   */
  s3IdleTimeoutMs: z.number().int().min(1000).max(3_600_000).default(120_000),
  /** Paths exported at the same time (each a PUT, a multipart upload, a copy or a delete). */
  exportConcurrency: z.number().int().min(1).max(256).default(16),
  /**
   * The bounded local cache (src/content/cache.ts): at most this much file content is kept locally
   * (bytes, or a size such as "10GiB", "500Mi", "2G" = 2·10^9). Absent: unbounded (the disk's size).
   * Above cacheHighWatermark percent of it, least recently used exported files are released down
   * to cacheLowWatermark percent; a write that finds no room fails with ENOSPC.
   */
  cacheCapacity: z.union([z.number(), z.string()]).transform((v, ctx) => {
    const bytes = parseSize(v)
    if (bytes === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'a size in bytes, or a number with a unit such as "10GiB", "500Mi", "2G"' })
      return z.NEVER
    }
    return bytes
  }).optional(),
  cacheHighWatermark: z.number().min(1).max(100).default(90),
  cacheLowWatermark: z.number().min(0).max(99).default(70)
}).strict().superRefine((c, ctx) => {
  if (c.cacheLowWatermark >= c.cacheHighWatermark) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['cacheLowWatermark'], message: `must be below cacheHighWatermark (${c.cacheHighWatermark})` })
  }
})

function isLoopback (address: string): boolean {
  return address === 'localhost' || address === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address)
}

export type Config = z.infer<typeof ConfigSchema>

export function configDir (): string {
  return process.env.S3LINK_CONFIG_DIR ?? '/etc/s3link'
}

export function defaultConfigPath (name: string): string {
  return path.join(configDir(), `${name}.yaml`)
}

export function defaultStateDir (name: string): string {
  return path.join(process.env.S3LINK_STATE_ROOT ?? '/var/lib/s3link', name)
}

/** Parses and validates config text; the error names the file and every bad field. */
export function parseConfig (text: string, file: string): Config {
  let raw: unknown
  try {
    raw = YAML.parse(text)
  } catch (err) {
    throw new UsageError(`config ${file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`)
  }
  const result = ConfigSchema.safeParse(raw)
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`)
    throw new UsageError(`config ${file} is invalid: ${problems.join('; ')}`)
  }
  return result.data
}

export async function loadConfig (file: string): Promise<Config> {
  let text: string
  try {
    text = await fs.promises.readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new UsageError(`unknown file system: no config at ${file} (create one with s3link init)`)
    }
    throw err
  }
  return parseConfig(text, file)
}

export function renderConfig (config: Config): string {
  return '# s3link file system configuration (see README.md, "Configuration")\n' + YAML.stringify(config)
}
