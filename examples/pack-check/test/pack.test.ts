import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { CORE_JOB_EXPECT, CORE_JOB_SCRIPT, PackCheckError, packCheck } from '../../../scripts/pack-check.js';

/**
 * `pnpm pack` of @docket/core alone installs into an empty project outside the workspace, with
 * only its declared dependencies, and runs a job there with plain node (scripts/pack-check.ts).
 * Slow-ish (a build, a pack, an npm install): a few seconds with a warm npm cache.
 */
test('packed @docket/core installs alone outside the workspace and runs a job with plain node', { timeout: 300_000 }, async () => {
  const lines: string[] = [];
  const result = await packCheck({ packages: ['packages/core'], script: CORE_JOB_SCRIPT, expect: CORE_JOB_EXPECT, log: (line) => lines.push(line) });

  assert.match(result.stdout, CORE_JOB_EXPECT);
  const names = result.installed.map((p) => p.slice(0, p.lastIndexOf('@'))).sort();
  const core = JSON.parse(await readFile(new URL('../../../packages/core/package.json', import.meta.url), 'utf8')) as {
    dependencies?: Record<string, string>;
  };
  // Exactly the core and its declared dependencies (none of which has dependencies of its own today).
  const expected = ['@docket/core', ...Object.keys(core.dependencies ?? {})].sort();
  for (const name of expected) assert.ok(names.includes(name), `${name} is installed (installed: ${names.join(', ')})`);
  assert.ok(!names.includes('@docket/testing'), 'the dev dependency @docket/testing is not installed');
  assert.ok(!existsSync(result.dir), 'the temporary directory is removed');
  assert.ok(lines.some((l) => l.startsWith('npm install')));
});

// Runs after the first test (tests in a file run in order), so the core is already built.
test('a script that fails makes the check fail, with its output', { timeout: 300_000 }, async () => {
  await assert.rejects(
    packCheck({
      packages: ['packages/core'],
      build: false,
      script: `import { Docket } from '@docket/core';\nconsole.log(typeof Docket);\nprocess.exit(3);\n`,
    }),
    (error: unknown) => error instanceof PackCheckError && /exited 3/.test(error.message) && /function/.test(error.message),
  );
});

// The `docket` binary as a user gets it: built, packed, installed by npm, run with plain node.
const CLI_SCRIPT = `
import { spawnSync } from 'node:child_process';
import { Docket, defineJob } from '@docket/core';

const docket = (...args) => {
  const r = spawnSync('node_modules/.bin/docket', args, { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const migrated = docket('migrate');
const app = new Docket({ connection: process.env.DATABASE_URL, logger: false });
const job = defineJob({ name: 'packed.cli', queue: 'packed-q' }, async () => {});
const ref = await app.push(job);
await app.close();
const queues = JSON.parse(docket('queues', '--json').stdout);
const shown = docket('job', 'show', ref.id);
const bad = docket('jobs', '--limit', 'many');
console.log(JSON.stringify({
  migrate: migrated.code,
  queue: queues.map((q) => q.name + ':' + q.pending).join(','),
  show: shown.code + ' ' + /^state +pending$/m.test(shown.stdout),
  bad: bad.code + ' ' + bad.stderr.split('\\n')[0],
}));
`;

test('the packed docket binary runs with plain node: migrate, queues --json, job show, a usage error', { timeout: 300_000 }, async () => {
  const result = await packCheck({ packages: ['packages/core'], build: false, script: CLI_SCRIPT });
  assert.equal(
    result.stdout.trim(),
    JSON.stringify({ migrate: 0, queue: 'packed-q:1', show: '0 true', bad: "2 docket: --limit takes a whole number from 1 to 1000, got 'many'" }),
  );
});
