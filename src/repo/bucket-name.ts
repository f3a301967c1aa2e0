/**
 * S3's rules for general purpose bucket names
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html), as one pure
 * function returning what is wrong, or undefined. The bucket table refuses names that S3 would
 * refuse, so a registered name is always safe in a LevelDB key and in a virtual-hosted URL.
 */

const RESERVED_PREFIXES = ['xn--', 'sthree-', 'amzn-s3-demo-']
const RESERVED_SUFFIXES = ['-s3alias', '--ol-s3', '.mrap', '--x-s3', '--table-s3']

export function bucketNameProblem (name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return 'must be 3 to 63 characters long'
  if (!/^[a-z0-9.-]+$/.test(name)) return 'may contain only lower-case letters, digits, dots and hyphens'
  if (!/^[a-z0-9]/.test(name) || !/[a-z0-9]$/.test(name)) return 'must begin and end with a letter or digit'
  if (name.includes('..')) return 'must not contain two adjacent dots'
  if (/^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name)) return 'must not be formatted as an IP address'
  const prefix = RESERVED_PREFIXES.find((p) => name.startsWith(p))
  if (prefix !== undefined) return `must not start with the reserved prefix ${prefix}`
  const suffix = RESERVED_SUFFIXES.find((s) => name.endsWith(s))
  if (suffix !== undefined) return `must not end with the reserved suffix ${suffix}`
  return undefined
}
