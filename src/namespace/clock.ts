/**
 * Wall-clock time in nanoseconds. Date.now() has millisecond resolution, so two operations within
 * one millisecond would get equal timestamps (and tools such as make compare them): we anchor the
 * monotonic high-resolution clock to the wall clock once and add its progress.
 */
const anchorWallNs = BigInt(Date.now()) * 1_000_000n
const anchorMonoNs = process.hrtime.bigint()

export const DAY_NS = 86_400n * 1_000_000_000n

export function nowNs (): bigint {
  return anchorWallNs + (process.hrtime.bigint() - anchorMonoNs)
}
