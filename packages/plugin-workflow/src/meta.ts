/**
 * Job metadata this plugin writes (documented in the README under "Job metadata"; other plugins,
 * such as a log forwarder, may read these keys). Ids are strings, like `JobRef.id`.
 */
export const META = Object.freeze({
  /** On a subtask: the id of the job whose handler called `ctx.subtask(...)`. */
  parentId: 'parentId',
  /** On a subtask: the id of the top-level job of its tree (the parent's `rootId`, or the parent itself). */
  rootId: 'rootId',
  /** On a workflow step (also chains, groups, chords): the workflow run's id. */
  workflowId: 'workflowId',
  /** On a workflow step: the step's key in its workflow. */
  workflowStep: 'workflowStep',
  /**
   * On a workflow step pushed when its parents finished: the id of the parent step's job whose
   * completion made it runnable (a tracer continues that job's trace through it).
   */
  releasedBy: 'releasedBy',
  /** On a job pushed with link/linkError callbacks: the callbacks, `[{ on: 'succeeded' | 'failed', spec }]`. */
  callbacks: 'callbacks',
  /** On a callback job: the id of the job whose success or failure pushed it. */
  callbackOf: 'callbackOf',
  /** On a callback job: 'succeeded' (link) or 'failed' (linkError). */
  callbackOn: 'callbackOn',
});

export function metaString(meta: Record<string, unknown>, key: string): string | undefined {
  const value = meta[key];
  return typeof value === 'string' && /^\d{1,19}$/.test(value) ? value : undefined;
}
