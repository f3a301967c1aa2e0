// The mount's kernel readahead follows the config's readAheadKiB (default 1024 KiB; libfuse 2
// alone would leave the kernel's 128 KiB).
import t from 'tap'
import { startFs } from '../fixtures/harness'

t.test('readAheadKiB sets the readahead of the mount', async (t) => {
  const tfs = await startFs(t)
  const readAhead = async (): Promise<string> => (await tfs.sh(`cat /sys/class/bdi/$(mountpoint -d ${tfs.mountpoint})/read_ahead_kb`)).stdout.trim()
  t.equal(await readAhead(), '1024', 'the default')
  await tfs.configure({ readAheadKiB: 256 })
  await tfs.restart()
  t.equal(await readAhead(), '256', 'as configured, at the next mount')
  await tfs.configure({ readAheadKiB: 0 })
  await tfs.restart()
  t.equal(await readAhead(), '128', '0: the kernel\'s own')
})
