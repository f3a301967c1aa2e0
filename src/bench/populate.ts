/**
 * `node dist/bench/populate.js DB_DIR DIRS FILES_PER_DIR`: fills a file system's LevelDB (its
 * daemon stopped) with DIRS directories d000000… under the root, each holding FILES_PER_DIR empty
 * files f000000…, owned by root. It writes exactly what the file system's mkdir and create write —
 * through Namespace.mutate with Transaction.newInode/link, parent nlink and times updated — but one
 * transaction (one LevelDB batch) per directory with all its files, instead of one per entry.
 * Prints {"seconds", "inodes", "nextIno"} as JSON.
 */
import { Store } from '../store/db'
import { META_NEXT_INO } from '../store/keys'
import { Namespace } from '../namespace/namespace'
import { S_IFDIR, S_IFREG, ROOT_INO } from '../namespace/inode'

export const dirName = (i: number): string => `d${String(i).padStart(6, '0')}`
export const fileName = (i: number): string => `f${String(i).padStart(6, '0')}`

export async function populate (dbDir: string, dirs: number, filesPerDir: number): Promise<{ seconds: number, inodes: number, nextIno: number }> {
  const start = process.hrtime.bigint()
  const store = await Store.open(dbDir)
  try {
    // Small caches: this process only writes, and every written inode would otherwise stay cached.
    const ns = await Namespace.open(store, { uid: 0, gid: 0, mode: 0o755 }, { inodeCacheSize: 1000, direntCacheSize: 1000 })
    let inodes = 0
    for (let d = 0; d < dirs; d++) {
      await ns.mutate(async (tx) => {
        const root = await ns.get(ROOT_INO)
        const dir = tx.newInode({ mode: S_IFDIR | 0o755, uid: 0, gid: 0, nlink: 2, size: 0, rdev: 0 })
        tx.link(ROOT_INO, dirName(d), dir)
        root.nlink++
        root.mtimeNs = root.ctimeNs = dir.ctimeNs
        tx.putInode(root)
        for (let f = 0; f < filesPerDir; f++) {
          const file = tx.newInode({ mode: S_IFREG | 0o644, uid: 0, gid: 0, nlink: 1, size: 0, rdev: 0 })
          tx.link(dir.ino, fileName(f), file)
          dir.mtimeNs = dir.ctimeNs = file.ctimeNs
        }
      }, { sync: d === dirs - 1 }) // the last batch synced: everything is on disk
      inodes += 1 + filesPerDir
    }
    const nextIno = await store.get<number>(META_NEXT_INO) ?? 0
    return { seconds: Number(process.hrtime.bigint() - start) / 1e9, inodes, nextIno }
  } finally {
    await store.close()
  }
}

if (require.main === module) {
  const [dbDir, dirs, files] = process.argv.slice(2)
  if (dbDir === undefined || !(Number(dirs) >= 0) || !(Number(files) >= 0)) {
    process.stderr.write('usage: node dist/bench/populate.js DB_DIR DIRS FILES_PER_DIR\n')
    process.exit(2)
  }
  populate(dbDir, Number(dirs), Number(files)).then((r) => {
    process.stdout.write(JSON.stringify(r) + '\n')
  }, (err: unknown) => {
    process.stderr.write(`populate failed: ${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  })
}
