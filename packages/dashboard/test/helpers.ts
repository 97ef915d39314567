import { Docket, type DocketOptions, Worker, type WorkerOptions } from '@docket/core';
import { type Harness as TestHarness, testHarness } from '@docket/testing';
import { type DashboardOptions, type ServedDashboard, serveDashboard } from '../src/index.js';

export type Harness = TestHarness<Docket, Worker, WorkerOptions>;

export function harness(options: Partial<DocketOptions> = {}): Promise<Harness> {
  return testHarness({
    app: (url) => new Docket({ connection: url, logger: false, ...options }),
    worker: (app, workerOptions: WorkerOptions) => new Worker(app, workerOptions),
  });
}

/** A dashboard on a free loopback port. */
export function serve(app: Docket, options: DashboardOptions = {}): Promise<ServedDashboard> {
  return serveDashboard(app, { port: 0, ...options });
}

/** A browser-like client: keeps cookies, follows no redirects (the tests look at them). */
export class Client {
  readonly cookies = new Map<string, string>();
  constructor(
    readonly base: string,
    readonly headers: Record<string, string> = {},
  ) {}

  async request(
    path: string,
    init: { method?: string; body?: Record<string, string> | string; headers?: Record<string, string> } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { accept: 'text/html', ...this.headers, ...init.headers };
    if (this.cookies.size > 0) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    let body: string | undefined;
    if (init.body !== undefined) {
      body = typeof init.body === 'string' ? init.body : new URLSearchParams(init.body).toString();
      headers['content-type'] ??= 'application/x-www-form-urlencoded';
    }
    const res = await fetch(new URL(path.replace(/^\//, ''), this.base), {
      method: init.method ?? (body === undefined ? 'GET' : 'POST'),
      headers,
      body,
      redirect: 'manual',
    });
    for (const cookie of res.headers.getSetCookie()) {
      const [pair] = cookie.split(';');
      const eq = (pair ?? '').indexOf('=');
      const name = (pair ?? '').slice(0, eq);
      const value = (pair ?? '').slice(eq + 1);
      if (/Max-Age=0/i.test(cookie) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return res;
  }

  async page(path: string): Promise<{ status: number; text: string; csrf: string | null }> {
    const res = await this.request(path);
    const text = await res.text();
    return { status: res.status, text, csrf: /name="_csrf" value="([^"]+)"/.exec(text)?.[1] ?? null };
  }
}
