/**
 * The dashboard's files (written under src/api/dashboard/ by its own module): `GET /` is its
 * index.html, `GET /dashboard/<file>` the rest. No authentication: the page logs in with the admin
 * token and calls the API with it.
 *
 * Files are read at request time, first from the source tree (src/api/dashboard, so a development
 * checkout serves edits without a rebuild), else from dist/api/dashboard, which `make build`
 * copies for installed trees (`make install` ships dist/ but not src/).
 */
import fs from 'node:fs'
import path from 'node:path'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'

const CANDIDATE_DIRS = [
  path.join(__dirname, '../../../src/api/dashboard'),
  path.join(__dirname, '../dashboard')
]

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8'
}

export const dashboardRoutes: FastifyPluginAsync = async (app) => {
  app.get('/', async (_request, reply) => await sendFile(reply, 'index.html'))
  app.get('/dashboard/*', async (request, reply) => await sendFile(reply, (request.params as { '*': string })['*']))
}

async function sendFile (reply: FastifyReply, relative: string): Promise<FastifyReply> {
  for (const dir of CANDIDATE_DIRS) {
    const file = path.resolve(dir, relative)
    // Refuse anything outside the directory (../, absolute paths, encoded variants after decoding).
    if (!file.startsWith(dir + path.sep)) break
    const data = await fs.promises.readFile(file).catch(() => undefined)
    if (data === undefined) continue
    return await reply
      .type(TYPES[path.extname(file)] ?? 'application/octet-stream')
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .send(data)
  }
  return await reply.code(404).send({ error: 'NotFound', message: `no dashboard file ${relative}` })
}
