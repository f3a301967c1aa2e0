/**
 * Which credentials reach a bucket, per its table entry (DESIGN.md "bucket table"):
 *   static  the entry's accessKeyId/secretAccessKey;
 *   role    the entry's role ARN assumed through STS with its external id (`fromTemporaryCredentials`),
 *           signed with the daemon's default credentials; the STS endpoint is configurable
 *           (config `stsEndpoint`, env S3LINK_STS_ENDPOINT) so tests can use a loopback STS;
 *   default a bucket not in the table (or an entry without keys or role): the AWS default chain
 *           (env, shared files, SSO, container/instance metadata).
 * Refresh: the S3 client memoizes the provider's identity and calls it again when the expiration is
 * less than 5 minutes away (the SDK's identity memoization), so assumed roles are renewed before
 * they expire and reused until then.
 */
import { fromNodeProviderChain, fromTemporaryCredentials } from '@aws-sdk/credential-providers'
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types'
import { type BucketEntry, credentialKind, isRoleArn, resolveSettings } from './bucket-entry'

export interface CredentialOptions {
  stsEndpoint?: string
  /** Names the assumed-role sessions (visible in the bucket owner's CloudTrail). */
  sessionName: string
}

/** The default chain is built once: it caches what it found (e.g. an instance profile). */
let defaultChain: AwsCredentialIdentityProvider | undefined
export function defaultCredentials (): AwsCredentialIdentityProvider {
  defaultChain ??= fromNodeProviderChain()
  return defaultChain
}

export function credentialsFor (entry: BucketEntry | undefined, opts: CredentialOptions): AwsCredentialIdentityProvider {
  const kind = entry === undefined ? 'default' : credentialKind(entry)
  if (entry === undefined || kind === 'default') return defaultCredentials()
  if (kind === 'static') {
    const identity: AwsCredentialIdentity = { accessKeyId: entry.accessKeyId, secretAccessKey: entry.secretAccessKey }
    return async () => identity
  }
  if (!isRoleArn(entry.accessRole)) {
    // InfinStor accepts bare role names (its example 1); STS needs the account, which only an ARN gives.
    return async () => {
      throw new Error(`accessRole of bucket ${entry.bucketname} is a role name, not an ARN: register arn:aws:iam::<account>:role/${entry.accessRole} to assume it`)
    }
  }
  return fromTemporaryCredentials({
    params: {
      RoleArn: entry.accessRole,
      ExternalId: entry.accessRoleExt === '' ? undefined : entry.accessRoleExt,
      RoleSessionName: opts.sessionName,
      DurationSeconds: 3600
    },
    masterCredentials: defaultCredentials(),
    clientConfig: {
      region: resolveSettings(entry).region,
      ...(opts.stsEndpoint !== undefined ? { endpoint: opts.stsEndpoint } : {})
    }
  })
}
