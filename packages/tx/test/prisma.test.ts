/**
 * Prisma 7 without its Rust engine: the generated client with the query compiler and the `pg`
 * driver adapter (@prisma/adapter-pg), all from the npm registry. The client is generated here
 * (into prisma/.generated, not committed) when it is missing or older than the schema.
 *
 * `prisma generate` does not run Prisma's schema engine, but the CLI checks at start-up that the
 * binary is present and downloads it when it is not — from a host this project's machines cannot
 * reach. PRISMA_SCHEMA_ENGINE_BINARY (Prisma's setting for a binary at a custom path) names
 * /bin/false instead: it is never run by `generate`, and would fail loudly if it were. A machine
 * that has the engine can set the variable itself; it is then left alone.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PrismaPg } from '@prisma/adapter-pg';
import { prismaTransaction } from '../src/prisma.js';
import { adapterSuite } from './suite.js';

const here = dirname(fileURLToPath(import.meta.url));
const schema = join(here, 'prisma', 'schema.prisma');
const client = join(here, 'prisma', '.generated', 'client.ts');

if (!existsSync(client) || statSync(client).mtimeMs < statSync(schema).mtimeMs) {
  execFileSync(join(here, '..', 'node_modules', '.bin', 'prisma'), ['generate', '--schema', schema], {
    env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? '/bin/false', PRISMA_HIDE_UPDATE_MESSAGE: '1' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}
// Typed by hand: the generated module does not exist before this file has run once (typecheck runs first).
interface GeneratedClient {
  $transaction<T>(fn: (tx: GeneratedTransaction) => Promise<T>, options?: { timeout?: number }): Promise<T>;
  $disconnect(): Promise<void>;
}
interface GeneratedTransaction {
  order: { create(args: { data: { id: number; total: number } }): Promise<unknown> };
  $queryRawUnsafe<T = unknown>(query: string, ...values: unknown[]): Promise<T>;
  $executeRawUnsafe(query: string, ...values: unknown[]): Promise<number>;
}
const { PrismaClient } = (await import(client)) as { PrismaClient: new (options: { adapter: PrismaPg }) => GeneratedClient };

adapterSuite('Prisma (interactive transaction, driver adapter pg)', async (url) => {
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url, max: 2 }) });
  return {
    transaction: (body) =>
      prisma.$transaction(
        (tx) =>
          body({
            adapter: prismaTransaction(tx),
            insertOrder: async (id) => void (await tx.order.create({ data: { id, total: 0 } })),
            exec: (text) => tx.$executeRawUnsafe(text),
          }),
        { timeout: 30_000 },
      ),
    close: () => prisma.$disconnect(),
  };
});
