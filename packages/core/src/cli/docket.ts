#!/usr/bin/env node
/**
 * The `docket` command line (README: "The command line"). Migrations (`migrate`, `pending`), a
 * worker from a config module (`worker`), and operations on queues, jobs and workers through the
 * app's public API (`queues`, `queue`, `jobs`, `job`, `workers`, `stats`, in commands.ts). Any
 * other command NAME runs the executable `docket-NAME` that a package provides (extensions.ts).
 * Errors are one line, `docket: CODE: message`, with the exit codes of exit-codes.ts.
 */
import { ConfigInvalidError } from '../errors.js';
import { parseArgs, UsageError } from './args.js';
import { COMMANDS, runCommand } from './commands.js';
import { appFrom, loadConfig } from './config.js';
import { EXIT, errorLine, exitCodeOf } from './exit-codes.js';
import { findExtension, runExtension } from './extensions.js';
import { USAGE, usage } from './usage.js';

const print = (text: string) => process.stdout.write(`${text}\n`);

async function migrations(command: 'migrate' | 'pending', argv: readonly string[]): Promise<number> {
  const args = parseArgs(command, argv, { flags: ['url', 'schema', 'config'], switches: [] });
  if (args.positionals.length > 1) throw new UsageError(`unexpected argument '${args.positionals[1]}'`, command);
  const app = await appFrom(command, {
    url: args.flags.get('url'),
    schema: args.flags.get('schema'),
    config: args.positionals[0] ?? args.flags.get('config'),
  });
  try {
    if (command === 'migrate') {
      const applied = await app.migrate();
      print(applied.length === 0 ? 'docket: schema up to date' : applied.map((m) => `docket: applied ${m.owner}@${m.version} ${m.name}`).join('\n'));
      return EXIT.OK;
    }
    const pending = await app.pendingMigrations();
    print(
      pending.length === 0 ? 'docket: no pending migrations' : pending.map((m) => `docket: pending ${m.owner}@${m.version} ${m.name}`).join('\n'),
    );
    return pending.length === 0 ? EXIT.OK : EXIT.NO;
  } finally {
    await app.close();
  }
}

/** Runs the config module's worker until SIGTERM/SIGINT (the worker's own graceful stop), then exits 0. */
async function worker(argv: readonly string[]): Promise<number> {
  const args = parseArgs('worker', argv, { flags: [], switches: [] });
  const [file, ...rest] = args.positionals;
  if (file === undefined) throw new UsageError('a config module is required', 'worker');
  if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}'`, 'worker');
  const config = await loadConfig(file);
  if (config.worker === undefined) {
    throw new ConfigInvalidError(`${file}: \`docket worker\` needs the worker's options: export default { app, worker: { jobs, queues } }.`, {
      details: { file },
    });
  }
  const { app } = config;
  try {
    // Loaded here: the other commands start faster without the worker and its executors.
    const { Worker } = await import('../worker/worker.js');
    const running = new Worker(app, { ...config.worker, handleSignals: true });
    await running.start();
    process.stderr.write(`docket: worker ${running.id} started on queues ${running.queueNames.join(', ')}; SIGTERM or Ctrl-C stops it\n`);
    await running.stopped;
    process.stderr.write(`docket: worker ${running.id} stopped\n`);
    return EXIT.OK;
  } finally {
    await app.close();
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    const topic = command === 'help' ? (rest[0] ?? null) : null;
    if (topic !== null && !USAGE[topic]) throw new UsageError(`no command '${topic}'`);
    print(usage(topic));
    return command === undefined ? EXIT.USAGE : EXIT.OK;
  }
  if (rest.includes('--help')) {
    print(usage(command));
    return EXIT.OK;
  }
  if (command === 'migrate' || command === 'pending') return migrations(command, rest);
  if (command === 'worker') return worker(rest);
  const known = COMMANDS[command];
  if (known) return runCommand(command, known, rest, print);
  const extension = findExtension(command);
  if (extension) return runExtension(extension, rest);
  throw new UsageError(`unknown command '${command}' (and no executable docket-${command} in node_modules/.bin or PATH)`);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${errorLine(error)}\n`);
    if (error instanceof UsageError) process.stderr.write(`\n${usage(error.command)}\n`);
    process.exit(exitCodeOf(error));
  },
);
