import t from 'tap'
import { parseConfig, renderConfig, ConfigSchema } from '../../src/daemon/config'

t.test('a rendered config parses back to itself, with defaults filled', async (t) => {
  const config = ConfigSchema.parse({ name: 'x', mountpoint: '/mnt/x', stateDir: '/var/lib/s3link/x' })
  t.same(parseConfig(renderConfig(config), 'x.yaml'), config)
  t.equal(config.logLevel, 'info')
})

t.test('bad configs name the file and every bad field', async (t) => {
  t.throws(() => parseConfig('name: x\nmountpoint: relative\nstateDir: /s\nlogLevel: loud\nextra: 1\n', 'f.yaml'),
    /config f.yaml is invalid: .*mountpoint: must be an absolute path.*logLevel.*extra/)
  t.throws(() => parseConfig('name: [', 'g.yaml'), /g.yaml is not valid YAML/)
  t.throws(() => parseConfig('', 'h.yaml'), /h.yaml is invalid/)
})
