/**
 * FSx's error names (spec/fsx-dra.md §8): the DRA and task services throw these, the FSx protocol
 * (src/api/fsx) sends them as awsJson errors, the CLI prints their message. `extra` carries the
 * shape's other fields (`Parameter` of IncompatibleParameterError, `Limit` of ServiceLimitExceeded).
 */
export type FsxErrorType = 'BadRequest' | 'UnsupportedOperation' | 'FileSystemNotFound' | 'IncompatibleParameterError' |
'ServiceLimitExceeded' | 'DataRepositoryAssociationNotFound' | 'InvalidDataRepositoryType' | 'DataRepositoryTaskExecuting' |
'DataRepositoryTaskNotFound' | 'DataRepositoryTaskEnded' | 'ResourceNotFound' | 'NotServiceResourceError' |
'ResourceDoesNotSupportTagging' | 'InternalServerError'

export class FsxError extends Error {
  constructor (readonly type: FsxErrorType, message: string, readonly extra: Record<string, string> = {}) {
    super(message)
  }

  get statusCode (): number { return this.type === 'InternalServerError' ? 500 : 400 }
}

export const badRequest = (message: string): FsxError => new FsxError('BadRequest', message)
