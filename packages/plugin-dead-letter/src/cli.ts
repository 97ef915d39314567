#!/usr/bin/env node
/**
 * `docket-dead-letters`: the dead-letter queue from the command line. Installed as a package
 * executable, so the core's `docket` runs it as `docket dead-letters …` (a command the core does not
 * know runs `docket-<command>`); it also runs on its own.
 *
 *   docket dead-letters list    [--queue Q]… [--name N]… [--waiting | --redriven] [--limit N] [--cursor C] [--json]
 *   docket dead-letters show    ID [--json]
 *   docket dead-letters redrive ID… [--to-queue Q] [--json]
 *   docket dead-letters redrive --all [--queue Q]… [--name N]… [--to-queue Q] [--json]
 *   docket dead-letters delete  ID…
 *
 * Every command takes `--config MODULE` (a module whose default export is the app, `{ app }`, or a
 * function returning one; the app must have the dead-letter plugin, and re-driving goes through
 * its other plugins' push hooks and payload codec) or `--url URL [--schema NAME]` (an app with only
 * this plugin; `$DATABASE_URL` by default). Exit codes: 0 done, 1 no such dead letter or already
 * re-driven, 2 usage, 3 database, 4 config module, 5 anything else. Errors are one line:
 * `docket: CODE: message`.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigInvalidError, Docket, isDocketError } from '@docket/core';
import { type DeadLetter, type DeadLetterPlugin, deadLetters, PLUGIN_NAME, type Redriven } from './index.js';

const EXIT = Object.freeze({ OK: 0, NO: 1, USAGE: 2, DATABASE: 3, CONFIG: 4, FAILED: 5 });

const USAGE = `usage: docket dead-letters <list|show|redrive|delete> (--config MODULE | --url URL [--schema NAME]) [options]
  list      [--queue Q]… [--name N]… [--waiting | --redriven] [--limit N] [--cursor C] [--json]
  show      ID [--json]
  redrive   ID… [--to-queue Q] [--json]       push them back to their queues as new jobs
  redrive   --all [--queue Q]… [--name N]… [--to-queue Q] [--json]
  delete    ID…
  --config MODULE: default export is the app (with the dead-letter plugin), { app }, or a function returning one.
  --url defaults to $DATABASE_URL.`;

class UsageError extends Error {}

const print = (text: string) => process.stdout.write(`${text}\n`);

async function appFrom(values: { config?: string; url?: string; schema?: string }): Promise<{ app: Docket; plugin: DeadLetterPlugin }> {
  if (values.config !== undefined) {
    if (values.url !== undefined || values.schema !== undefined) throw new UsageError('--config replaces --url and --schema; give one or the other');
    let loaded: { default?: unknown };
    try {
      loaded = (await import(pathToFileURL(resolve(values.config)).href)) as { default?: unknown };
    } catch (error) {
      throw new ConfigInvalidError(`${values.config}: the config module could not be loaded: ${firstLine(error)}`, {
        cause: error,
        details: { file: values.config },
      });
    }
    const value = typeof loaded.default === 'function' ? await (loaded.default as () => unknown)() : loaded.default;
    const app = value instanceof Docket ? value : (value as { app?: unknown } | null)?.app;
    if (!(app instanceof Docket))
      throw new ConfigInvalidError(`${values.config}: the default export must be a Docket app, { app }, or a function returning one.`, {
        details: { file: values.config },
      });
    const plugin = app.plugins.find((p) => p.name === PLUGIN_NAME) as DeadLetterPlugin | undefined;
    if (!plugin) {
      await app.close();
      throw new ConfigInvalidError(`${values.config}: the app has no '${PLUGIN_NAME}' plugin; add deadLetters() to its plugins.`, {
        details: { file: values.config },
      });
    }
    return { app, plugin };
  }
  const url = values.url ?? process.env.DATABASE_URL;
  if (!url) throw new UsageError('no database: pass --url URL, set DATABASE_URL, or give --config MODULE');
  const plugin = deadLetters();
  const app = new Docket({ connection: url, schema: values.schema ?? 'docket', listen: false, maxConnections: 2, plugins: [plugin] });
  return { app, plugin };
}

function firstLine(error: unknown): string {
  return ((error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '').trim();
}

function table(letters: readonly DeadLetter[]): string {
  const rows = letters.map((l) => [
    l.id,
    l.jobId,
    l.queue,
    l.name,
    l.state,
    String(l.attempt),
    l.failedAt.toISOString(),
    l.redrivenJobId === null ? '-' : `job ${l.redrivenJobId}`,
    firstLine(l.errors.at(-1)?.message ?? '').slice(0, 80),
  ]);
  const header = ['ID', 'JOB', 'QUEUE', 'NAME', 'STATE', 'ATTEMPTS', 'FAILED AT', 'REDRIVEN', 'LAST ERROR'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  return [header, ...rows].map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

function describe(letter: DeadLetter): string {
  const lines = [
    `dead letter ${letter.id}: job ${letter.jobId} '${letter.name}' on queue '${letter.queue}', ${letter.state} after ${letter.attempt} attempt(s)`,
    `  pushed ${letter.createdAt.toISOString()}, ended ${letter.failedAt.toISOString()}${letter.workerId ? ` on worker ${letter.workerId}` : ''}`,
    `  re-driven: ${letter.redrivenAt === null ? 'no' : `${letter.redrivenAt.toISOString()} as job ${letter.redrivenJobId}`}`,
    `  args: ${JSON.stringify(letter.args)}`,
    `  meta: ${JSON.stringify(letter.meta)}`,
    '  errors:',
    ...letter.errors.map((e) => `    attempt ${e.attempt} at ${e.at}: ${e.name}${e.code ? ` [${e.code}]` : ''}: ${e.message.split('\n')[0]}`),
  ];
  return lines.join('\n');
}

const redrivenLine = (r: Redriven) => `re-driven dead letter ${r.deadLetterId} (job ${r.jobId}) as job ${r.ref.id} on queue '${r.ref.queue}'`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    print(USAGE);
    return command === undefined ? EXIT.USAGE : EXIT.OK;
  }
  if (!['list', 'show', 'redrive', 'delete'].includes(command)) throw new UsageError(`unknown command '${command}'`);
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string' },
      url: { type: 'string' },
      schema: { type: 'string' },
      queue: { type: 'string', multiple: true },
      name: { type: 'string', multiple: true },
      waiting: { type: 'boolean' },
      redriven: { type: 'boolean' },
      limit: { type: 'string' },
      cursor: { type: 'string' },
      all: { type: 'boolean' },
      'to-queue': { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const allowed: Record<string, readonly string[]> = {
    list: ['config', 'url', 'schema', 'queue', 'name', 'waiting', 'redriven', 'limit', 'cursor', 'json'],
    show: ['config', 'url', 'schema', 'json'],
    redrive: ['config', 'url', 'schema', 'queue', 'name', 'all', 'to-queue', 'json'],
    delete: ['config', 'url', 'schema'],
  };
  for (const key of Object.keys(values)) if (!allowed[command]?.includes(key)) throw new UsageError(`${command} takes no --${key}`);
  if (command === 'list' && positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  if (command === 'show' && positionals.length !== 1) throw new UsageError('show takes one dead letter id');
  if ((command === 'delete' || (command === 'redrive' && !values.all)) && positionals.length === 0)
    throw new UsageError(`${command} takes dead letter ids`);
  if (command === 'redrive' && values.all && positionals.length > 0) throw new UsageError('redrive takes ids or --all, not both');
  if (command === 'redrive' && !values.all && (values.queue || values.name))
    throw new UsageError('--queue and --name select dead letters for redrive --all');
  if (values.waiting && values.redriven) throw new UsageError('--waiting and --redriven exclude each other');
  let limit: number | undefined;
  if (values.limit !== undefined) {
    limit = Number(values.limit);
    if (!/^\d+$/.test(values.limit)) throw new UsageError(`--limit takes a number, got '${values.limit}'`);
  }

  const { app, plugin } = await appFrom(values);
  try {
    // Through the app: a connection problem or a missing migration is said as what to do
    // (DOCKET_CONNECTION_FAILED, DOCKET_MIGRATIONS_PENDING) before any command runs.
    await app.assertMigrated();
    const json = values.json === true;
    const output = (value: unknown, text: string) => print(json ? JSON.stringify(value, null, 2) : text);
    const redrive = values['to-queue'] === undefined ? {} : { queue: values['to-queue'] };
    switch (command) {
      case 'list': {
        const page = await plugin.list({
          ...(values.queue ? { queue: values.queue } : {}),
          ...(values.name ? { name: values.name } : {}),
          ...(values.waiting ? { redriven: false } : values.redriven ? { redriven: true } : {}),
          ...(limit === undefined ? {} : { limit }),
          ...(values.cursor === undefined ? {} : { cursor: values.cursor }),
        });
        const more = page.nextCursor === null ? '' : `\nmore: --cursor ${page.nextCursor}`;
        output(page, page.deadLetters.length === 0 ? 'no dead letters' : `${table(page.deadLetters)}${more}`);
        return EXIT.OK;
      }
      case 'show': {
        const letter = await plugin.get(positionals[0] ?? '');
        output(letter, describe(letter));
        return EXIT.OK;
      }
      case 'redrive': {
        const done = values.all
          ? await plugin.redriveAll({ ...(values.queue ? { queue: values.queue } : {}), ...(values.name ? { name: values.name } : {}) }, redrive)
          : await plugin.redrive(positionals, redrive);
        output(done, done.length === 0 ? 'nothing to re-drive' : done.map(redrivenLine).join('\n'));
        return EXIT.OK;
      }
      default: {
        const deleted = await plugin.delete(positionals);
        print(`deleted ${deleted.length} dead letter(s)${deleted.length > 0 ? `: ${deleted.join(', ')}` : ''}`);
        return deleted.length === positionals.length ? EXIT.OK : EXIT.NO;
      }
    }
  } finally {
    await app.close();
  }
}

function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError || (error as { code?: string })?.code?.startsWith?.('ERR_PARSE_ARGS')) return EXIT.USAGE;
  if (isDocketError(error)) {
    if (error.code === 'DOCKET_CONFIG_INVALID') return EXIT.CONFIG;
    if (error.code === 'DOCKET_DEAD_LETTER_NOT_FOUND' || error.code === 'DOCKET_DEAD_LETTER_ALREADY_REDRIVEN') return EXIT.NO;
    if (['DOCKET_CONNECTION_FAILED', 'DOCKET_MIGRATIONS_PENDING', 'DOCKET_SCHEMA_TOO_NEW'].includes(error.code)) return EXIT.DATABASE;
    if (error.code.startsWith('DOCKET_INVALID_')) return EXIT.USAGE;
    return EXIT.FAILED;
  }
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? EXIT.DATABASE : EXIT.FAILED;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`docket: ${isDocketError(error) ? `${error.code}: ` : ''}${firstLine(error)}\n`);
    if (error instanceof UsageError) process.stderr.write(`\n${USAGE}\n`);
    process.exit(exitCodeOf(error));
  },
);
