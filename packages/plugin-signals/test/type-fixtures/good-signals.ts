// Signals that must compile: checked by test/types.test.ts (tsc on this directory).
import { Docket } from '@docket/core';
import { signals } from '../../src/index.js';

declare module '@docket/core' {
  interface DocketEventMap {
    'reports.ready': { reportId: string; pages: number };
  }
}

const events = signals({ broadcast: ['succeeded', 'failed', 'reports.ready'] });
export const app = new Docket({ connection: 'postgres://localhost/app', plugins: [events] });

export const listening = [
  events.on('succeeded', (s) => s.job.id),
  events.on('failed', (s) => s.error.message),
  events.on('retrying', (s) => s.retryAt.getTime()),
  events.on('*', (s) => s.type),
  events.on('reports.ready', (s) => s.payload.pages + s.payload.reportId.length),
];
export const next: Promise<number> = events.next('reports.ready').then((s) => s.payload.pages);
