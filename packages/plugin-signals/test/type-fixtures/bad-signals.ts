// Signals that must NOT compile (test/types.test.ts): every line marked EXPECT-ERROR is reported, and no other line.
import { signals } from '../../src/index.js';

declare module '@docket/core' {
  interface DocketEventMap {
    'reports.ready': { reportId: string; pages: number };
  }
}

const events = signals();
export const a = events.on('succeded', () => {}); // EXPECT-ERROR: misspelt signal
export const b = events.next('reports.redy'); // EXPECT-ERROR: misspelt plugin event
export const c = events.on('reports.ready', (s) => s.payload.total); // EXPECT-ERROR: no such field in the payload
export const d = signals({ broadcast: ['suceeded'] }); // EXPECT-ERROR: misspelt in broadcast
export const e = events.on('failed', (s) => s.payload); // EXPECT-ERROR: a lifecycle signal has no payload
