import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

// The demo checks itself: it exits 1 when any job ends in another state or after another number of
// attempts than it expects. It runs here as `pnpm demo` runs it, on the test run's PostgreSQL.
test('the demo runs every job to the end it expects and exits 0', { timeout: 120_000 }, async () => {
  const demo = spawn(process.execPath, [...process.execArgv, fileURLToPath(new URL('../demo.ts', import.meta.url))], {
    env: process.env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  demo.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  const [code] = await once(demo, 'close');
  assert.equal(code, 0, output);
  assert.match(output, /10 jobs: 9 succeeded \(1 after a retry\), 1 cancelled, 0 failed/);
  assert.match(output, /Every job ended as expected/);
});
