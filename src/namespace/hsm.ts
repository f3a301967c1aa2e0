/**
 * Where a file's content is, in Lustre HSM's words (spec/fsx-dra.md §14.2): flag bits as
 * `enum hsm_states`, printed as `lfs hsm_state` prints them.
 *   0x0                      never exported (or outside any DRA)
 *   exists archived          content local and identical in S3
 *   exists dirty archived    changed locally since its export
 *   released exists archived content only in S3: the next read loads it
 */
export const HS_EXISTS = 0x1
export const HS_DIRTY = 0x2
export const HS_RELEASED = 0x4
export const HS_ARCHIVED = 0x8
export const HS_LOST = 0x40

/** An imported file whose content has not been loaded yet. */
export const IMPORTED_RELEASED = HS_RELEASED | HS_EXISTS | HS_ARCHIVED

const WORDS: Array<[number, string]> = [
  [HS_RELEASED, 'released'], [HS_EXISTS, 'exists'], [HS_DIRTY, 'dirty'], [HS_ARCHIVED, 'archived'], [HS_LOST, 'lost_from_hsm']
]

/** `(0x0000000d) released exists archived, archive_id:1`, as `lfs hsm_state` after the path. */
export function hsmStateText (flags: number): string {
  const words = WORDS.filter(([bit]) => (flags & bit) !== 0).map(([, w]) => ' ' + w).join('')
  return `(0x${flags.toString(16).padStart(8, '0')})${words}${(flags & HS_ARCHIVED) !== 0 ? ', archive_id:1' : ''}`
}

export const isReleased = (flags: number | undefined): boolean => ((flags ?? 0) & HS_RELEASED) !== 0
