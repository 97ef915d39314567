import { pkgVersion, workerEntry } from '../pkg.js';
import { type MixedItem, type Payload, type Session, SkipSystem, type SystemAdapter } from './types.js';

/**
 * BullMQ v6, on Redis (127.0.0.1:6379, when it answers) and on its PostgreSQL backend
 * (`createPostgresBackend`). Worker concurrency 10, everything else at its defaults: completed
 * jobs are kept (removeOnComplete unset), retries without backoff when `attempts` > 1.
 */
export const BULLMQ_QUEUE = 'bench';
export const BULLMQ_WORKER_OPTIONS = { concurrency: 10 } as const;
export const REDIS = { host: '127.0.0.1', port: 6379 } as const;

export type Backend = 'redis' | 'postgres';

/** Builds Queue/Worker constructor arguments for one backend, in the parent and in the worker. */
export async function bullmqParts(backend: Backend, url: string, namespace: string) {
  const bullmq = await import('bullmq');
  if (backend === 'redis') {
    const base = { connection: { ...REDIS, maxRetriesPerRequest: null }, prefix: namespace };
    return {
      bullmq,
      queue: () => new bullmq.Queue(BULLMQ_QUEUE, base),
      worker: (processor: (job: { data: Payload }) => Promise<void>, extra: object = {}) =>
        new bullmq.Worker(BULLMQ_QUEUE, processor, { ...base, ...BULLMQ_WORKER_OPTIONS, ...extra }),
    };
  }
  // The producer side creates the schema (migrate: true); the worker process finds it there.
  const base = { connection: { connectionString: url, migrate: true } };
  return {
    bullmq,
    queue: () => new bullmq.Queue(BULLMQ_QUEUE, base, bullmq.createPostgresBackend),
    worker: (processor: (job: { data: Payload }) => Promise<void>, extra: object = {}) =>
      new bullmq.Worker(BULLMQ_QUEUE, processor, { ...base, ...BULLMQ_WORKER_OPTIONS, ...extra }, bullmq.createPostgresBackend),
  };
}

async function redisAnswers(): Promise<string | null> {
  const { Redis } = await import('ioredis');
  const client = new Redis({ ...REDIS, lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => {});
  try {
    await client.connect();
    const pong = await client.ping();
    const info = await client.info('server');
    const version = /redis_version:(\S+)/.exec(info)?.[1] ?? '?';
    return pong === 'PONG' ? version : null;
  } catch {
    return null;
  } finally {
    client.disconnect();
  }
}

export async function bullmqAdapter(backend: Backend): Promise<SystemAdapter> {
  let redisVersion = '';
  if (backend === 'redis') {
    const v = await redisAnswers();
    if (!v) throw new SkipSystem(`Redis does not answer at ${REDIS.host}:${REDIS.port}`);
    redisVersion = v;
  }
  await import('bullmq');
  return {
    id: backend === 'redis' ? 'bullmq' : 'bullmq-pg',
    label: backend === 'redis' ? 'BullMQ (Redis)' : 'BullMQ (Postgres)',
    version: pkgVersion('bullmq') + (backend === 'redis' ? ` / Redis ${redisVersion}` : ''),
    usesPostgres: backend === 'postgres',
    history: 'not measured: seeding finished jobs needs its own storage format',
    settings: {
      worker: JSON.stringify(BULLMQ_WORKER_OPTIONS),
      backend:
        backend === 'redis'
          ? `ioredis ${pkgVersion('ioredis')} to ${REDIS.host}:${REDIS.port}, a fresh key prefix per round`
          : 'createPostgresBackend, connection { connectionString, migrate: true } (pg pool + LISTEN client)',
      enqueue: 'queue.addBulk (bulk), queue.add (single)',
      jobs: 'defaults (completed jobs kept); mixed: priority 1 high / 2 normal, delay, attempts 2 without backoff',
    },
    async open({ url, namespace }) {
      const parts = await bullmqParts(backend, url, namespace);
      const queue = parts.queue();
      await queue.waitUntilReady();
      const session: Session = {
        async bulk(payloads: Payload[]) {
          await queue.addBulk(payloads.map((data) => ({ name: 'noop', data })));
        },
        async single(payload: Payload) {
          await queue.add('noop', payload);
        },
        async mixed(items: MixedItem[]) {
          const now = Date.now();
          await queue.addBulk(
            items.map(({ payload, high, runAt, maxAttempts }) => ({
              name: 'noop',
              data: payload,
              opts: {
                // BullMQ: 1 is the highest priority.
                priority: high ? 1 : 2,
                ...(runAt ? { delay: Math.max(0, runAt.getTime() - now) } : {}),
                attempts: maxAttempts ?? 1,
              },
            })),
          );
        },
        async remaining() {
          const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
          return Object.values(counts).reduce((a, b) => a + (b ?? 0), 0);
        },
        async seedFinished() {
          throw new Error('history drain not supported for BullMQ');
        },
        async close() {
          if (backend === 'redis') await queue.obliterate({ force: true }).catch(() => {});
          await queue.close();
        },
      };
      return session;
    },
    worker({ url, namespace }) {
      return {
        entry: workerEntry('bullmq'),
        env: { BENCH_URL: url, BENCH_NAMESPACE: namespace, BENCH_BULLMQ_BACKEND: backend },
      };
    },
  };
}
