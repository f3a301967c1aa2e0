/**
 * HSM state, preloading and archiving (`s3link hsm state|restore|archive`, the `lfs hsm_state`,
 * `lfs hsm_restore` and `lfs hsm_archive` of spec/fsx-dra.md §14.3). Paths are relative to the
 * mount root ('/ns1/a.txt').
 *
 *   POST /api/hsm/state   { paths }             → { states: [{ path, flags, state } | { path, error, code? }] }
 *   POST /api/hsm/restore { paths, parallel? }  → NDJSON, one line per event as it happens:
 *        { path, error }                 a path that could not be walked, or a file that did not load
 *        { total, bytes, skipped }       the walk is done: released files to load, their bytes, files already local
 *        { path, loading }               a large file's first `loading` bytes are local
 *        { path, ok: true, bytes }       a file is loaded
 *        { done: true, loaded, failed, skipped, bytes, aborted? }   the last line
 *   POST /api/hsm/archive { paths, parallel?, wait? } → NDJSON:
 *        { path, error, code? }          a path that cannot be archived (before the others)
 *        { total, bytes }                the walk found another file to export: running totals
 *        { walked: true, total, bytes, skipped }   the walk is done (skipped: already archived)
 *        { path, ok: true, bytes }       a file is exported (exists archived)
 *        { path, ok: false, error, code }   a file that could not be exported (code: FSx's report code)
 *        { started: true }               wait: false: the last line; the archive goes on in the daemon
 *        { done: true, archived, failed, skipped, bytes, aborted? }   the last line
 *   POST /api/hsm/release { paths }         → NDJSON (lfs hsm_release: exported, clean, closed files only):
 *        { path, error, code? }          a path that cannot be walked
 *        { path, refused, error }        a file not released: refused ∈ not-archived (never exported),
 *                                        dirty, busy (open), lost, not-a-file (a named non-file only)
 *        { path, ok: true, bytes }       a file is released (released exists archived)
 *        { done: true, released, refused, failed, skipped, bytes, aborted? }   the last line
 *                                        (skipped: released already; failed: paths in error)
 *
 * At most MAX_PATHS paths per call (the CLI splits longer lists). Validation errors are answered
 * before streaming starts (400); once streaming, failures are lines. A restore stops (`aborted`)
 * when its client disconnects or the API closes, so it never holds up the daemon's stop. An archive
 * is a request to export, as lfs hsm_archive's: it goes on when its client leaves (or never waited);
 * the API's close stops its walk and waits for the files in flight. A release, like a restore,
 * stops when its client leaves (the file in hand finishes): lfs hsm_release is synchronous.
 */
import { once } from 'node:events'
import { PassThrough } from 'node:stream'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import type { Logger } from '../../daemon/logger'
import type { FileSystem, Loader } from '../../fs/filesystem'
import { type Inode, isDir } from '../../namespace/inode'
import { hsmStateText } from '../../namespace/hsm'
import { restore, type RestoreEvent } from '../../content/restore'
import type { TreeExport } from '../../sync/task-export'
import { type ArchiveEvent, archive, archiveRoots } from '../../sync/task-archive'
import { type HsmReleaseEvent, hsmRelease } from '../../sync/hsm-release'
import { FsError } from '../../util/errors'

export const MAX_PATHS = 10_000
export const MAX_PARALLEL = 64
const PATH_MAX = 4096

const PathSchema = z.string().max(PATH_MAX).refine(
  (p) => p.startsWith('/') && !p.includes('\0') && p.split('/').every((c) => c !== '.' && c !== '..'),
  'must be a path from the mount root (/ns1/a.txt) without . or .. components'
)
const Paths = z.array(PathSchema).min(1).max(MAX_PATHS)
const StateBody = z.object({ paths: Paths }).strict()
const RestoreBody = z.object({ paths: Paths, parallel: z.number().int().min(1).max(MAX_PARALLEL).default(8) }).strict()
const ArchiveBody = RestoreBody.extend({ wait: z.boolean().default(true) }).strict()

/** Directories have no HSM state: lfs prints 0x0 for them. */
const flagsOf = (inode: Inode): number => isDir(inode) ? 0 : inode.hsm ?? 0

interface Options { filesystem: FileSystem, loader: Loader, treeExport: TreeExport, log: Logger }

export const hsmRoutes: FastifyPluginAsync<Options> = async (fastify, { filesystem, loader, treeExport, log }) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>()
  const running = new Set<AbortController>()
  const archiving = new Map<AbortController, Promise<void>>()
  app.addHook('preClose', async () => {
    for (const r of running) r.abort(new Error('the daemon is stopping'))
    for (const a of archiving.keys()) a.abort(new Error('the daemon is stopping'))
    await Promise.all(archiving.values())
  })

  app.post('/api/hsm/state', { schema: { body: StateBody } }, async (request) => {
    const states = []
    for (const path of request.body.paths) {
      try {
        const flags = flagsOf(await filesystem.resolve(path))
        states.push({ path, flags, state: hsmStateText(flags) })
      } catch (err) {
        states.push({ path, error: (err as Error).message, ...(err instanceof FsError ? { code: err.code } : {}) })
      }
    }
    return { states }
  })

  /**
   * Streams a restore or release as NDJSON: its events as they come, its summary as the last line
   * (or `{ done, error }`, details in the log). It stops when the client leaves or the API closes
   * (the file in hand finishes): both are synchronous in lfs.
   */
  const stream = async <E, S extends { aborted?: boolean }>(
    reply: FastifyReply, what: string, paths: number, job: (signal: AbortSignal, emit: (event: E) => Promise<void>) => Promise<S>
  ): Promise<FastifyReply> => {
    const abort = new AbortController()
    const out = new PassThrough()
    out.on('error', () => undefined) // written after the client left: the abort below ends the job
    reply.raw.on('close', () => { if (!reply.raw.writableFinished) abort.abort(new Error('the client disconnected')) })
    const emit = async (event: E): Promise<void> => {
      if (!out.write(JSON.stringify(event) + '\n')) await once(out, 'drain', { signal: abort.signal })
    }
    running.add(abort)
    const started = Date.now()
    void job(abort.signal, emit)
      .then((summary) => {
        log.info(`${what} finished`, { paths, ...summary, aborted: summary.aborted === true, ms: Date.now() - started })
        out.end(JSON.stringify(summary) + '\n')
      }, (err: unknown) => {
        const aborted = abort.signal.aborted
        if (!aborted) log.error(`${what} failed`, { error: (err as Error).message, stack: (err as Error).stack })
        out.end(JSON.stringify({ done: true, error: aborted ? String((abort.signal.reason as Error).message) : 'internal error (details are in the daemon log)' }) + '\n')
      })
      .finally(() => running.delete(abort))
    return await reply.type('application/x-ndjson').send(out)
  }

  app.post('/api/hsm/restore', { schema: { body: RestoreBody } }, async (request, reply) => {
    const { paths, parallel } = request.body
    return await stream<RestoreEvent, Awaited<ReturnType<typeof restore>>>(reply, 'hsm restore', paths.length,
      async (signal, onEvent) => await restore(filesystem, loader, paths, { parallel, signal, onEvent }))
  })

  app.post('/api/hsm/release', { schema: { body: StateBody } }, async (request, reply) => {
    const { paths } = request.body
    return await stream<HsmReleaseEvent, Awaited<ReturnType<typeof hsmRelease>>>(reply, 'hsm release', paths.length,
      async (signal, onEvent) => await hsmRelease(filesystem, paths, { signal, onEvent }))
  })

  app.post('/api/hsm/archive', { schema: { body: ArchiveBody } }, async (request, reply) => {
    const { paths, parallel, wait } = request.body
    const abort = new AbortController()
    // The client leaving stops the stream, not the archive: writes stop, waits for drain end.
    const gone = new AbortController()
    const out = new PassThrough()
    out.on('error', () => undefined)
    reply.raw.on('close', () => { if (!reply.raw.writableFinished) gone.abort() })
    const emit = async (event: ArchiveEvent): Promise<void> => {
      if (gone.signal.aborted || out.writableEnded) return
      if (!out.write(JSON.stringify(event) + '\n')) await once(out, 'drain', { signal: gone.signal }).catch(() => undefined)
    }
    const last = (line: object): void => { if (!out.writableEnded) out.end(JSON.stringify(line) + '\n') }
    const started = Date.now()
    const job = (async () => {
      const { roots, failed } = await archiveRoots(filesystem, treeExport, paths, emit)
      if (!wait) last({ started: true })
      const summary = await archive(treeExport, roots, { parallel, signal: abort.signal, onEvent: wait ? emit : () => undefined })
      summary.failed += failed
      log.info('hsm archive finished', { paths: paths.length, archived: summary.archived, failed: summary.failed, skipped: summary.skipped, bytes: summary.bytes, aborted: summary.aborted === true, ms: Date.now() - started })
      last(summary)
    })().catch((err: unknown) => {
      log.error('hsm archive failed', { error: (err as Error).message, stack: (err as Error).stack })
      last({ done: true, error: 'internal error (details are in the daemon log)' })
    }).finally(() => archiving.delete(abort))
    archiving.set(abort, job)
    return await reply.type('application/x-ndjson').send(out)
  })
}
