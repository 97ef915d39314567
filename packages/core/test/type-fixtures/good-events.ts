// Events that must compile: a plugin declares its events, emits them, and taps narrow by type.
import { Docket, type DocketEvent, type DocketPlugin, type PeriodicEvents } from '../../src/index.js';

export interface FixtureFinished {
  count: number;
}
declare module '../../src/index.js' {
  interface DocketEventMap extends PeriodicEvents<'fixture-task', { swept: number }> {
    'fixture.finished': FixtureFinished;
  }
}

const app = new Docket({ connection: 'postgres://localhost/app' });
app.emit('fixture', 'fixture.finished', { count: 3 });

export const counts: number[] = [];
export const listener: DocketPlugin = {
  name: 'listener',
  apply(target) {
    target.hooks.event.tap('listener', (event) => {
      if (event.type === 'fixture.finished') counts.push(event.payload.count);
      if (event.type === 'fixture-task.finished') counts.push(event.payload.result.swept, event.payload.durationMs);
    });
  },
};
export const only: DocketEvent<'fixture.finished'>['payload'] = { count: 1 };
