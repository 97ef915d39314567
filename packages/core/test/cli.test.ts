import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { createTestDatabase } from '@docket/testing';

const run = promisify(execFile);
const cli = new URL('../src/cli/docket.ts', import.meta.url).pathname;
// `--import tsx` resolves from the working directory; a test that runs elsewhere needs it absolute.
const nodeArgs = process.execArgv.map((arg, i, all) => (all[i - 1] === '--import' && arg === 'tsx' ? import.meta.resolve('tsx') : arg));

function docket(args: string[], env: Record<string, string> = {}, cwd?: string) {
  return run(process.execPath, [...nodeArgs, cli, ...args], { env: { ...process.env, ...env }, cwd }).then(
    ({ stdout }) => ({ code: 0, stdout }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout + error.stderr }),
  );
}

test('docket migrate / pending from the command line, with --url or a config module', { timeout: 180_000 }, async () => {
  const db = await createTestDatabase({ template: false });
  try {
    assert.equal((await docket(['pending', '--url', db.url])).code, 1, 'pending exits 1 before migrating');
    const first = await docket(['migrate', '--url', db.url]);
    assert.equal(first.code, 0, first.stdout);
    assert.match(first.stdout, /applied core@1/);
    assert.match((await docket(['migrate'], { DATABASE_URL: db.url })).stdout, /schema up to date/);

    // A config module brings its plugins' migrations.
    const config = join(tmpdir(), `docket-config-${process.pid}.mjs`);
    const core = new URL('../src/index.ts', import.meta.url).href;
    await writeFile(
      config,
      `import { Docket } from ${JSON.stringify(core)};
       const plugin = { name: 'cli-test', migrations: [{ version: 1, name: 'a table', up: ({ schema }) => \`CREATE TABLE \${schema}.cli_test (id int)\` }], apply() {} };
       export default () => new Docket({ connection: ${JSON.stringify(db.url)}, plugins: [plugin], listen: false });`,
    );
    const withPlugin = await docket(['migrate', config]);
    assert.equal(withPlugin.code, 0, withPlugin.stdout);
    assert.match(withPlugin.stdout, /applied cli-test@1 a table/);
    assert.equal((await docket(['pending', config])).code, 0);

    const bad = await docket(['migrate', '--url', db.url, '--schema', 'Bad-Name']);
    assert.equal(bad.code, 2);
    assert.match(bad.stdout, /DOCKET_INVALID_SCHEMA/);
    assert.equal((await docket(['frobnicate'])).code, 2);
  } finally {
    await db.drop();
  }
});
