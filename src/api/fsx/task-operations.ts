/**
 * The FSx data repository task operations (spec/fsx-dra.md §16), next to the DRA operations of
 * operations.ts: each maps the wire shape (task-shapes.ts) onto the task service (src/sync/tasks.ts).
 */
import type { TaskService } from '../../sync/tasks'
import type { Operation } from './operations'
import * as shape from './task-shapes'

export function taskOperations (tasks: TaskService): Record<string, Operation> {
  return {
    CreateDataRepositoryTask: { input: shape.CreateDataRepositoryTask, run: async (i) => await tasks.create(i) },
    DescribeDataRepositoryTasks: { input: shape.DescribeDataRepositoryTasks, run: async (i) => tasks.describe(i) },
    CancelDataRepositoryTask: { input: shape.CancelDataRepositoryTask, run: async (i) => await tasks.cancel(i.TaskId) }
  }
}
