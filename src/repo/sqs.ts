/**
 * The SQS side of automatic import's change source 3 (DESIGN.md "Import"): a queue that S3 event
 * notifications feed, read with long polls and emptied only after its changes are queued durably.
 *
 * A queue's client is built from the bucket table entry of the DRA's bucket: the queue is normally
 * in the bucket's account, so the same credentials (static keys, assumed role or default chain,
 * credentials.ts) reach it. The queue URL's origin is the endpoint, so an SQS-compatible server
 * (ElasticMQ, LocalStack…) works like AWS; on AWS the URL also names the region
 * (`https://sqs.eu-west-1.amazonaws.com/…`), which must sign the requests, so it wins over the
 * bucket's.
 */
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs'
import { type BucketEntry, resolveSettings } from './bucket-entry'
import { type CredentialOptions, credentialsFor } from './credentials'

/** SQS's maxima: a poll waits up to 20 s for up to 10 messages. */
export const WAIT_TIME_SECONDS = 20
export const MAX_MESSAGES = 10

/** Fail fast on an endpoint that does not answer; a long poll is silent for up to 20 s, so the idle limit is above it. */
const CONNECTION_TIMEOUT_MS = 5000
const REQUEST_TIMEOUT_MS = (WAIT_TIME_SECONDS + 15) * 1000

export interface QueueMessage { messageId: string, receiptHandle: string, body: string }

export interface DeleteFailure { messageId: string, error: string }

/** Why a queue URL cannot be polled, or undefined: http(s), and a path of account and queue name. */
export function queueUrlProblem (url: string): string | undefined {
  let u: URL
  try { u = new URL(url) } catch { return 'is not a URL' }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'must be an http:// or https:// URL'
  if (u.username !== '' || u.password !== '') return 'must not contain credentials'
  if (u.search !== '' || u.hash !== '') return 'must have no query or fragment'
  if (!/^\/[^/]+\/[^/]+\/?$/.test(u.pathname)) return 'must end in /<account>/<queue name>, as SQS queue URLs do'
  return undefined
}

/** The region an AWS queue URL names (sqs.REGION.amazonaws.com, or the legacy REGION.queue.amazonaws.com). */
export function queueUrlRegion (url: string): string | undefined {
  const host = new URL(url).hostname
  return /^sqs\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/.exec(host)?.[1] ?? /^([a-z0-9-]+)\.queue\.amazonaws\.com(\.cn)?$/.exec(host)?.[1]
}

/** One queue and the client that reaches it. `close()` when done: the client holds sockets. */
export class SqsQueue {
  private readonly client: SQSClient

  constructor (readonly url: string, entry: BucketEntry | undefined, opts: CredentialOptions) {
    const region = queueUrlRegion(url) ?? (entry !== undefined ? resolveSettings(entry).region : undefined)
    this.client = new SQSClient({
      ...(region !== undefined ? { region } : {}),
      endpoint: new URL(url).origin,
      credentials: credentialsFor(entry, opts),
      requestHandler: { connectionTimeout: CONNECTION_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS }
    })
  }

  /** One long poll: resolves with what arrived within 20 s (maybe nothing); rejects with AbortError when `signal` fires. */
  async receive (signal: AbortSignal): Promise<QueueMessage[]> {
    const out = await this.client.send(new ReceiveMessageCommand({
      QueueUrl: this.url,
      WaitTimeSeconds: WAIT_TIME_SECONDS,
      MaxNumberOfMessages: MAX_MESSAGES
    }), { abortSignal: signal })
    return (out.Messages ?? []).map((m) => ({ messageId: m.MessageId ?? '', receiptHandle: m.ReceiptHandle ?? '', body: m.Body ?? '' }))
  }

  /** Deletes received messages (at most 10, one batch); the ones SQS could not delete are returned. */
  async delete (messages: QueueMessage[], signal: AbortSignal): Promise<DeleteFailure[]> {
    if (messages.length === 0) return []
    const out = await this.client.send(new DeleteMessageBatchCommand({
      QueueUrl: this.url,
      Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.receiptHandle }))
    }), { abortSignal: signal })
    return (out.Failed ?? []).map((f) => ({ messageId: messages[Number(f.Id)]?.messageId ?? '', error: `${f.Code ?? 'Error'}: ${f.Message ?? ''}` }))
  }

  close (): void {
    this.client.destroy()
  }
}

/** A short description of an SQS failure for the log: the error's name, HTTP status and message. */
export function describeSqsError (err: unknown): string {
  const e = err as { name?: string, message?: string, $metadata?: { httpStatusCode?: number } }
  const status = e.$metadata?.httpStatusCode
  const message = (e.message ?? '').split('\n')[0].slice(0, 200)
  const name = `${e.name ?? 'Error'}${status !== undefined ? ` (HTTP ${status})` : ''}`
  return message !== '' && message !== e.name ? `${name}: ${message}` : name
}

export function isAbortError (err: unknown): boolean {
  return (err as { name?: string }).name === 'AbortError'
}
