/** What `docket help` and a usage error print, per command. */

const CONNECT = `Connection (every command but worker):
  --url URL        PostgreSQL URL (default $DATABASE_URL)
  --schema NAME    Docket's schema (default docket)
  --config FILE    a config module instead (its app: plugins, codecs, schema)
  --json           JSON on stdout instead of a table`;

export const USAGE: Readonly<Record<string, string>> = {
  migrate: 'docket migrate [CONFIG | --url URL [--schema NAME]]\n  Applies the pending migrations (with CONFIG: its plugins’ too).',
  pending: 'docket pending [CONFIG | --url URL [--schema NAME]]\n  Lists the migrations the database lacks; exit code 1 when there are any.',
  worker:
    'docket worker CONFIG\n  Runs a worker from CONFIG (default export { app, worker }); SIGTERM or Ctrl-C stops it gracefully (twice: aborts running jobs).',
  queues: 'docket queues [--json]\n  Every queue: paused or not, jobs pending/running/waiting/failed, lag of its oldest due job, live workers.',
  queue: 'docket queue pause|resume NAME [--json]\n  Stops (or lets again) every worker fetching the queue’s jobs; running jobs finish.',
  jobs: 'docket jobs [--queue Q] [--state S] [--name N] [--limit N] [--before ID] [--json]\n  Jobs newest first (limit 1-1000, default 20); --before ID lists those older than job ID (the next page).',
  job: 'docket job show|retry|cancel ID [--json]\n  show: the job in full; retry: a failed or cancelled job back to pending; cancel: cancels it.',
  workers: 'docket workers [--queue Q] [--json]\n  Workers with a heartbeat row: host, pid, queues, running jobs, heartbeat age.',
  stats: 'docket stats [--json]\n  Jobs per state over every queue, live workers, the most lagging queue.',
};

export function usage(command: string | null): string {
  if (command && USAGE[command]) return `usage: ${USAGE[command]}\n\n${CONNECT}`;
  return `usage: docket <command> [arguments]

Commands:
${Object.values(USAGE)
  .map((u) => `  ${u.split('\n')[0]}`)
  .join('\n')}
  docket help [COMMAND]

Any other command NAME runs the executable docket-NAME (from node_modules/.bin or PATH) with the
remaining arguments: that is how packages add commands (a package's bin named docket-NAME).

${CONNECT}

Exit codes: 0 done; 1 the answer is no (pending migrations, no such job, job in the wrong state);
2 bad arguments; 3 database error; 4 config module error; 5 any other failure.`;
}
