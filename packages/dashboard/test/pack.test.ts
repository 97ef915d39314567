/**
 * No build step for users: the packed @docket/core and @docket/dashboard install into an empty
 * project outside the workspace (only their declared dependencies), and `docket dashboard
 * ./docket.config.mjs` serves the UI there with plain node — the core's command line finding the
 * dashboard's bin in node_modules/.bin (scripts/pack-check.ts). Slow-ish: two builds, packs, an
 * npm install.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { packCheck } from '../../../scripts/pack-check.js';

const SCRIPT = `
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Docket } from '@docket/core';

const app = new Docket({ connection: process.env.DATABASE_URL, logger: false });
await app.migrate();
await app.declareQueue('packed');
await app.close();
writeFileSync('docket.config.mjs', "import { Docket } from '@docket/core';\\nexport default new Docket({ connection: process.env.DATABASE_URL, logger: false });\\n");
const child = spawn('node_modules/.bin/docket', ['dashboard', './docket.config.mjs', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
const url = await new Promise((resolve, reject) => {
  let out = '';
  child.stdout.on('data', (chunk) => {
    out += chunk;
    const match = /http:\\/\\/127\\.0\\.0\\.1:\\d+\\//.exec(out);
    if (match) resolve(match[0]);
  });
  child.on('exit', (code) => reject(new Error('docket dashboard exited ' + code + ': ' + out)));
});
try {
  for (const path of ['', 'jobs', 'workers', 'assets/app.css']) {
    const res = await fetch(url + path);
    const text = await res.text();
    console.log(path || 'overview', res.status, /packed/.test(text) ? 'shows-queue' : '');
  }
} finally {
  child.kill('SIGTERM');
}
`;

test('packed, the dashboard installs outside the workspace and `docket dashboard ./docket.config.mjs` serves it with plain node', {
  timeout: 600_000,
}, async () => {
  const result = await packCheck({ packages: ['packages/core', 'packages/dashboard'], script: SCRIPT, expect: /overview 200 shows-queue/ });
  assert.match(result.stdout, /^jobs 200/m);
  assert.match(result.stdout, /^workers 200/m);
  assert.match(result.stdout, /^assets\/app\.css 200/m);
  const names = result.installed.map((p) => p.slice(0, p.lastIndexOf('@')));
  assert.ok(!names.includes('fastify'), 'the optional Fastify peer is not installed');
  assert.ok(!names.includes('puppeteer-core'), 'no browser driver in a user’s install');
});
