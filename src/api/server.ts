/**
 * The control API's listeners, started by the daemon after the mount and stopped first:
 *   STATE_DIR/api.sock   Unix socket, mode 0600 (and the state directory is 0700): trusted, no
 *                        credentials; the CLI talks here.
 *   config api.address:port (loopback; port 0 = any free one): admin credentials required.
 *                        The URL actually bound is written to STATE_DIR/api.url for CLIs and tests.
 * A socket left by a daemon that died is removed before listening (the database lock already
 * guarantees no other daemon of this file system runs).
 */
import fs from 'node:fs'
import type { AddressInfo } from 'node:net'
import { UsageError } from '../util/errors'
import { buildApp, type ApiServices, type App } from './app'
import type { AdminCredentials } from './auth'
import type { StatusInfo } from './routes/status'
import { socketPath, urlPath } from './paths'

export { socketPath, urlPath }

export interface ApiServerOptions {
  stateDir: string
  address: string
  port: number
  credentials: AdminCredentials
  identity: Omit<StatusInfo, 'apiUrl'>
}


export class ApiServer {
  private apps: App[] = []
  url = ''

  private constructor (private readonly stateDir: string) {}

  static async start (services: Omit<ApiServices, 'status'>, opts: ApiServerOptions): Promise<ApiServer> {
    const server = new ApiServer(opts.stateDir)
    try {
      await server.listen(services, opts)
    } catch (err) {
      await server.close()
      throw err
    }
    return server
  }

  private async listen (services: Omit<ApiServices, 'status'>, opts: ApiServerOptions): Promise<void> {
    const full: ApiServices = { ...services, status: () => ({ ...opts.identity, apiUrl: this.url }) }
    const sock = socketPath(opts.stateDir)
    // sun_path holds 107 bytes; a longer path would fail with an obscure EINVAL.
    if (Buffer.byteLength(sock) > 107) throw new UsageError(`the API socket path ${sock} is too long for a Unix socket (over 107 bytes): use a shorter state directory`)
    await fs.promises.rm(sock, { force: true })
    const unix = await buildApp(full, { listener: 'unix' })
    this.apps.push(unix)
    await unix.listen({ path: sock })
    await fs.promises.chmod(sock, 0o600)

    const tcp = await buildApp(full, { listener: 'tcp', credentials: opts.credentials })
    this.apps.push(tcp)
    await tcp.listen({ host: opts.address, port: opts.port })
    const bound = tcp.server.address() as AddressInfo
    const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address
    this.url = `http://${host}:${bound.port}`
    await fs.promises.writeFile(urlPath(opts.stateDir), this.url + '\n', { mode: 0o644 })
  }

  /** Idempotent; runs every step even when one fails. */
  async close (): Promise<void> {
    const apps = this.apps
    this.apps = []
    for (const app of apps) await app.close().catch(() => undefined)
    await fs.promises.rm(urlPath(this.stateDir), { force: true }).catch(() => undefined)
    await fs.promises.rm(socketPath(this.stateDir), { force: true }).catch(() => undefined)
  }
}
