/**
 * The FSx operations s3link serves, each an input schema (shapes.ts) and a function from the
 * validated input to the response body. The DRA rules live in src/dra; this file only maps the
 * wire shapes onto them. Tasks (issue 5) add their operations next to these.
 */
import fs from 'node:fs'
import type { z } from 'zod'
import type { Associations } from '../../dra/associations'
import { describeAssociations } from '../../dra/describe'
import { associationArn, fileSystemArn, type Tag } from '../../dra/association'
import { FsxError } from '../../dra/errors'
import * as shape from './shapes'

export interface Operation { input: z.ZodTypeAny, run: (input: any) => Promise<unknown> }

export interface FileSystemInfo { id: string, name: string, created: string, mountpoint: string, stateDir: string }

export function fsxOperations (associations: Associations, info: FileSystemInfo): Record<string, Operation> {
  const { identity } = associations
  return {
    CreateDataRepositoryAssociation: { input: shape.CreateDataRepositoryAssociation, run: async (i) => await associations.create(i) },
    UpdateDataRepositoryAssociation: { input: shape.UpdateDataRepositoryAssociation, run: async (i) => await associations.update(i) },
    DeleteDataRepositoryAssociation: { input: shape.DeleteDataRepositoryAssociation, run: async (i) => await associations.delete(i) },
    DescribeDataRepositoryAssociations: {
      input: shape.DescribeDataRepositoryAssociations,
      run: async (i) => {
        const { page, nextToken } = describeAssociations(associations.list(), identity.id, i)
        return { Associations: page.map((r) => associations.view(r)), ...(nextToken !== undefined ? { NextToken: nextToken } : {}) }
      }
    },
    DescribeFileSystems: {
      input: shape.DescribeFileSystems,
      run: async (i: z.infer<typeof shape.DescribeFileSystems>) => {
        const missing = i.FileSystemIds?.find((id) => id !== identity.id)
        if (missing !== undefined) throw new FsxError('FileSystemNotFound', `file system ${missing} does not exist here (this is ${identity.id})`)
        if (i.NextToken !== undefined) return { FileSystems: [] }
        return { FileSystems: [await fileSystemView()] }
      }
    },
    ListTagsForResource: {
      input: shape.ListTagsForResource,
      run: async (i) => ({ Tags: associations.get(taggedAssociation(i.ResourceARN))?.Tags ?? [] })
    },
    TagResource: {
      input: shape.TagResource,
      run: async (i: z.infer<typeof shape.TagResource>) => {
        await associations.setTags(taggedAssociation(i.ResourceARN), (tags) => [...tags.filter((t) => !i.Tags.some((n) => n.Key === t.Key)), ...i.Tags as Tag[]])
        return {}
      }
    },
    UntagResource: {
      input: shape.UntagResource,
      run: async (i: z.infer<typeof shape.UntagResource>) => {
        await associations.setTags(taggedAssociation(i.ResourceARN), (tags) => tags.filter((t) => !i.TagKeys.includes(t.Key)))
        return {}
      }
    }
  }

  /** Tags are kept on associations only: any other ARN is not a resource here. */
  function taggedAssociation (arn: string): string {
    if (arn === fileSystemArn(identity)) throw new FsxError('ResourceDoesNotSupportTagging', `s3link keeps tags on data repository associations only, not on the file system ${identity.id}`, { ResourceARN: arn })
    const id = /\/(dra-[0-9a-f]{8,})$/.exec(arn)?.[1]
    if (id === undefined || associations.get(id) === undefined || associationArn(identity, id) !== arn) {
      throw new FsxError('ResourceNotFound', `no data repository association has the ARN ${arn}`, { ResourceARN: arn })
    }
    return id
  }

  async function fileSystemView (): Promise<Record<string, unknown>> {
    const st = await fs.promises.statfs(info.stateDir)
    return {
      OwnerId: identity.account,
      CreationTime: Date.parse(info.created) / 1000,
      FileSystemId: identity.id,
      FileSystemType: 'LUSTRE',
      FileSystemTypeVersion: '2.15',
      Lifecycle: 'AVAILABLE',
      StorageCapacity: Math.floor(st.blocks * st.bsize / 2 ** 30),
      StorageType: 'SSD',
      DNSName: 'localhost',
      ResourceARN: fileSystemArn(identity),
      Tags: [{ Key: 'Name', Value: info.name }],
      LustreConfiguration: {
        DeploymentType: 'PERSISTENT_2',
        MountName: info.name,
        DataCompressionType: 'NONE'
      }
    }
  }
}
