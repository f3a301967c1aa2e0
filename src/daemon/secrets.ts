/** Files holding secrets are created with mode 0600 from the start (never widened, then narrowed). */
import fs from 'node:fs'

export async function writeSecretFile (file: string, text: string): Promise<void> {
  await fs.promises.writeFile(file, text, { mode: 0o600, flag: 'wx' })
  await fs.promises.chmod(file, 0o600) // the umask could only have narrowed it; make it exact
}
