/** The query parameters the dashboard's own pages read, each validated against what it may hold. */
import { JOB_STATES, type JobState } from '@docket/core';
import { BadRequest, type RequestContext } from './request.js';

export const QUEUE = /[A-Za-z0-9_.:-]{1,128}/;
export const JOB_NAME = /[A-Za-z0-9_.:/-]{1,200}/;
export const JOB_ID = /[1-9]\d{0,18}/;
const DATE = /\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?Z?)?/;
const CURSOR = /[A-Za-z0-9_-]{1,300}/;

/** A time from a `datetime-local` field or an ISO string, read as UTC (the form says so). */
function dateParam(ctx: RequestContext | { param: RequestContext['param'] }, name: string): Date | undefined {
  const value = ctx.param(name, DATE);
  if (!value) return undefined;
  const iso = value.replace(' ', 'T');
  const date = new Date(/T/.test(iso) ? (iso.endsWith('Z') ? iso : `${iso}Z`) : `${iso}T00:00Z`);
  if (Number.isNaN(date.getTime())) throw new BadRequest(`The query parameter \`${name}\` is not a date.`);
  return date;
}

export interface JobsQuery {
  queue?: string;
  state?: JobState;
  name?: string;
  since?: Date;
  before?: Date;
  order: 'newest' | 'oldest';
  cursor?: string;
}

/** The jobs list's filter, from the query string (an empty field is no filter). */
export function jobsQuery(ctx: { param: RequestContext['param'] }): JobsQuery {
  const blank = (v: string | null) => (v === null || v === '' ? undefined : v);
  const state = blank(ctx.param('state', /[a-z]{0,20}/));
  if (state !== undefined && !(JOB_STATES as readonly string[]).includes(state))
    throw new BadRequest('The query parameter `state` is not a job state.');
  const query: JobsQuery = {
    queue: blank(ctx.param('queue', new RegExp(`(?:${QUEUE.source})?`))),
    state: state as JobState | undefined,
    name: blank(ctx.param('name', new RegExp(`(?:${JOB_NAME.source})?`))),
    since: dateParam(ctx, 'since'),
    before: dateParam(ctx, 'before'),
    order: (ctx.param('order', /newest|oldest/) ?? 'newest') as 'newest' | 'oldest',
    cursor: blank(ctx.param('cursor', CURSOR)),
  };
  if (query.since && query.before && query.since >= query.before) throw new BadRequest('`since` must be before `before`.');
  return query;
}

/** The filter as query parameters again (for links that keep it). */
export function jobsQueryParams(q: JobsQuery): Record<string, string | undefined> {
  const iso = (d: Date | undefined) => d?.toISOString().slice(0, 16);
  return {
    queue: q.queue,
    state: q.state,
    name: q.name,
    since: iso(q.since),
    before: iso(q.before),
    order: q.order === 'newest' ? undefined : q.order,
  };
}
