// The config file is watched: a new log level applies to the running daemon without a restart.
import t from 'tap'
import fs from 'node:fs'
import { startFs } from '../fixtures/harness'

t.test('changing logLevel in the config applies live', async (t) => {
  const tfs = await startFs(t)
  t.equal((await tfs.sh('cat nonexistent')).code, 1)
  t.notMatch(tfs.readLog(), /"level":"debug"/, 'no debug lines at level info')
  const text = await fs.promises.readFile(tfs.configPath, 'utf8')
  await fs.promises.writeFile(tfs.configPath, text.replace(/logLevel: \w+/, 'logLevel: debug'))
  const deadline = Date.now() + 10_000
  while (!/log level changed/.test(tfs.readLog()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
  t.match(tfs.readLog(), /log level changed/)
  await tfs.sh('cat nonexistent-either')
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.match(tfs.readLog(), /"level":"debug".*ENOENT|ENOENT.*"level":"debug"/, 'debug lines now appear')
  await fs.promises.writeFile(tfs.configPath, text.replace(/logLevel: \w+/, 'logLevel: shouting'))
  await new Promise((resolve) => setTimeout(resolve, 1000))
  t.ok(tfs.readLog().split('\n').some((l) => l.includes('config change ignored') && l.includes('logLevel')),
    'an invalid change is refused and logged')
  t.equal((await tfs.sh('touch still-up')).code, 0, 'and the daemon keeps running')
})
