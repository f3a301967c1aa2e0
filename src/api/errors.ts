/**
 * The API's error replies, in one place:
 *   400 { error: 'BadRequest', field, message }   a request field is wrong (nothing was changed)
 *   401 { error: 'Unauthorized', message }        no credentials, or a wrong token
 *   403 { __type, Message } (awsJson)             an AWS Signature V4 request that fails verification
 *   400/500 { __type, Message, … } (awsJson)      the FSx API's errors (src/api/fsx/protocol.ts)
 *   404 { error: 'NotFound', field?, message }    unknown bucket or route
 *   413 { error: 'PayloadTooLarge', message }     body over the limit
 *   500 { error: 'InternalError', message }       a bug: details go to the log, never to the client
 * Messages never quote a secret, a credential header or a stack trace.
 */

export class ApiError extends Error {
  constructor (readonly statusCode: number, readonly body: Record<string, unknown>, readonly headers: Record<string, string> = {}) {
    super(String(body.message))
  }
}

export const badRequest = (field: string, message: string): ApiError =>
  new ApiError(400, { error: 'BadRequest', field, message })

export const notFound = (message: string, field?: string): ApiError =>
  new ApiError(404, { error: 'NotFound', ...(field !== undefined ? { field } : {}), message })

export const unauthorized = (message: string): ApiError =>
  new ApiError(401, { error: 'Unauthorized', message }, { 'www-authenticate': 'Bearer realm="s3link"' })

/**
 * The awsJson 1.1 error shape (what AWS SDKs and the AWS CLI parse into an exception name):
 * `__type` in the body and in the `x-amzn-ErrorType` header, `Message` as FSx's error shapes spell it,
 * and the shape's other fields (`Parameter`, `Limit`).
 */
export const awsError = (statusCode: number, type: string, message: string, extra: Record<string, string> = {}): ApiError =>
  new ApiError(statusCode, { __type: type, Message: message, ...extra }, { 'x-amzn-errortype': type, 'content-type': 'application/x-amz-json-1.1' })
