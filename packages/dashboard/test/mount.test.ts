/** The dashboard inside an existing server: node:http under a base path, Express, Fastify; and alone from the command line. */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import express from 'express';
import Fastify from 'fastify';
import { createDashboard, docketDashboard } from '../src/index.js';
import { Client, type Harness, harness } from './helpers.js';

let h: Harness;
before(async () => {
  h = await harness();
  await h.app.declareQueue('mounted');
});
after(() => h.close());

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Opens the overview under `base`, pauses a queue through its form, and checks the links stay under `base`. */
async function exercise(root: string, base: string): Promise<void> {
  const client = new Client(`${root}/`);
  const page = await client.page(`${base}`);
  assert.equal(page.status, 200);
  assert.match(page.text, new RegExp(`href="${base}/jobs"`), 'links carry the base path');
  assert.match(page.text, new RegExp(`action="${base}/queues/mounted/pause"`));
  const pause = await client.request(`${base}/queues/mounted/pause`, { body: { _csrf: page.csrf ?? '', _back: `${base}/` } });
  assert.equal(pause.status, 303, 'the form is read through the host server');
  assert.equal(pause.headers.get('location'), `${base}/`);
  assert.equal((await h.app.listQueues()).find((q) => q.name === 'mounted')?.paused, true);
  await h.app.resumeQueue('mounted');
  const css = await client.request(`${base}/assets/app.css`);
  assert.equal(css.status, 200);
  assert.match(css.headers.get('content-type') ?? '', /text\/css/);
}

test('node:http: mounted under a base path; other paths are the host’s', async () => {
  const dashboard = createDashboard(h.app, { basePath: '/admin/docket' });
  const server = createServer((req, res) =>
    dashboard.handle(req, res, () => {
      res.end('host app');
    }),
  );
  const root = await listen(server);
  try {
    await exercise(root, '/admin/docket');
    assert.equal(await (await fetch(`${root}/elsewhere`)).text(), 'host app');
  } finally {
    await dashboard.close();
    server.close();
  }
});

test('Express: app.use(basePath, dashboard.handle)', async () => {
  const dashboard = createDashboard(h.app, { basePath: '/ops' });
  const app = express();
  app.use('/ops', dashboard.handle);
  app.get('/', (_req, res) => {
    res.send('host app');
  });
  const server = createServer(app);
  const root = await listen(server);
  try {
    await exercise(root, '/ops');
    assert.equal(await (await fetch(`${root}/`)).text(), 'host app');
  } finally {
    await dashboard.close();
    server.close();
  }
});

test('Fastify: register(docketDashboard, { app, prefix })', async () => {
  const fastify = Fastify();
  await fastify.register(docketDashboard, { app: h.app, prefix: '/docket' });
  fastify.get('/', async () => 'host app');
  await fastify.listen({ port: 0, host: '127.0.0.1' });
  const root = `http://127.0.0.1:${(fastify.server.address() as AddressInfo).port}`;
  try {
    await exercise(root, '/docket');
    assert.equal(await (await fetch(`${root}/`)).text(), 'host app');
  } finally {
    await fastify.close();
  }
});

/** Runs a command and resolves with the first line it prints, or its exit with what it printed. */
function firstLine(child: ChildProcess): Promise<{ line?: string; code?: number | null; output: string }> {
  return new Promise((resolve) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const nl = output.indexOf('\n');
      if (nl >= 0 && /^docket dashboard: http/.test(output)) resolve({ line: output.slice(0, nl), output });
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('exit', (code) => resolve({ code, output }));
  });
}

test('docket dashboard ./docket.config.js: the core command line runs the dashboard’s bin; a public address without auth is refused', {
  timeout: 60_000,
}, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'docket-dashboard-cli-'));
  try {
    const tsx = import.meta.resolve('tsx');
    const cli = new URL('../src/cli.ts', import.meta.url).pathname;
    const bin = join(dir, 'node_modules', '.bin');
    await mkdir(bin, { recursive: true });
    // What the package manager links for the published package's bin.
    await writeFile(join(bin, 'docket-dashboard'), `#!/bin/sh\nexec "${process.execPath}" --import "${tsx}" "${cli}" "$@"\n`);
    await chmod(join(bin, 'docket-dashboard'), 0o755);
    const config = join(dir, 'docket.config.mjs');
    const core = import.meta.resolve('@docket/core');
    await writeFile(
      config,
      `import { Docket } from ${JSON.stringify(core)};\nexport default new Docket({ connection: ${JSON.stringify(h.db.url)}, logger: false });\n`,
    );
    const docket = new URL('../../core/src/cli/docket.ts', import.meta.url).pathname;
    const run = (args: string[], env: Record<string, string> = {}) =>
      spawn(process.execPath, ['--import', tsx, docket, 'dashboard', config, ...args], {
        cwd: dir,
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });

    const child = run(['--port', '0']);
    try {
      const started = await firstLine(child);
      assert.ok(started.line, started.output);
      const url = /http:\/\/127\.0\.0\.1:\d+\//.exec(started.line)?.[0] as string;
      assert.equal((await new Client(url).page('/')).status, 200);
    } finally {
      child.kill('SIGTERM');
    }

    const refused = await firstLine(run(['--port', '0', '--host', '0.0.0.0']));
    assert.equal(refused.code, 1);
    assert.match(refused.output, /DOCKET_DASHBOARD_UNSAFE_BIND/);

    const authed = run(['--port', '0', '--host', '0.0.0.0'], { DOCKET_DASHBOARD_TOKEN: 'a-long-random-test-token-0123456789' });
    try {
      const started = await firstLine(authed);
      assert.ok(started.line, started.output);
      const port = /:(\d+)\//.exec(started.line)?.[1];
      assert.equal((await new Client(`http://127.0.0.1:${port}/`).request('/', { headers: { accept: 'text/plain' } })).status, 401);
    } finally {
      authed.kill('SIGTERM');
    }
    const usage = await firstLine(run(['--bogus']));
    assert.equal(usage.code, 2);
    assert.match(usage.output, /usage: docket dashboard CONFIG_MODULE/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
