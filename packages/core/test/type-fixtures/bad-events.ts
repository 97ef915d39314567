// Events that must NOT compile (test/types.test.ts): every line marked EXPECT-ERROR is reported, and no other line.
import { Docket } from '../../src/index.js';

const app = new Docket({ connection: 'postgres://localhost/app' });
app.emit('fixture', 'fixture.finsihed', { count: 3 }); // EXPECT-ERROR: a type nobody declared
app.emit('fixture', 'fixture.finished', { count: '3' }); // EXPECT-ERROR: the payload of another shape
app.hooks.event.tap('x', (event) => {
  if (event.type === 'fixture.finished') return event.payload.total; // EXPECT-ERROR: no such field
  return undefined;
});
