/** Where a file system's control API can be found, from its state directory (no heavy imports: the CLI uses it). */
import path from 'node:path'

/** Unix socket, mode 0600: trusted, no credentials. */
export const socketPath = (stateDir: string): string => path.join(stateDir, 'api.sock')
/** The TCP URL the daemon actually bound (config port 0 = any free port), one line. */
export const urlPath = (stateDir: string): string => path.join(stateDir, 'api.url')
