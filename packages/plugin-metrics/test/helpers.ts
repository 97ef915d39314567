import { Docket, type DocketOptions, Worker, type WorkerOptions } from '@docket/core';
import { type Harness as TestHarness, testHarness } from '@docket/testing';

export { deferred } from '@docket/testing';

export type Harness = TestHarness<Docket, Worker, WorkerOptions>;

/** A fresh database, a migrated app with the given options, and cleanup of what it started. */
export function harness(options: Partial<DocketOptions> = {}): Promise<Harness> {
  return testHarness({
    app: (url) => new Docket({ connection: url, logger: false, ...options }),
    worker: (app, workerOptions: WorkerOptions) => new Worker(app, workerOptions),
  });
}

/** GETs a URL; the status, the content type and the body. */
export async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(url, { headers });
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

/**
 * The samples of a Prometheus text exposition: `name{a="x",b="y"}` (labels sorted) → value.
 * Enough of the format for what prom-client writes: no escapes in these label values.
 */
export function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not an exposition line: ${line}`);
    const labels = (match[2] ?? '')
      .split(/,(?=[a-zA-Z_]+=")/)
      .filter(Boolean)
      .sort();
    samples.set(`${match[1]}{${labels.join(',')}}`, Number(match[3]));
  }
  return samples;
}

/** The key of a sample in parseExposition's map. */
export function key(name: string, labels: Record<string, string> = {}): string {
  const pairs = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort();
  return `${name}{${pairs.join(',')}}`;
}
