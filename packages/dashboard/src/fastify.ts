/**
 * The dashboard as a Fastify plugin: `fastify.register(docketDashboard, { app, prefix: '/docket' })`.
 * Fastify is not imported (an optional peer dependency): the plugin only needs the instance it is
 * given. Requests under the prefix are handed to the plain handler with the raw request and reply.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Docket } from '@docket/core';
import { createDashboard, type DashboardOptions } from './dashboard.js';

export interface FastifyDashboardOptions extends Omit<DashboardOptions, 'basePath'> {
  app: Docket;
  /** Fastify's own option: where the dashboard is mounted (its basePath). */
  prefix?: string;
}

/** The part of a Fastify instance the plugin uses. */
interface FastifyLike {
  prefix: string;
  addContentTypeParser(type: string, fn: (request: unknown, payload: unknown, done: (error: Error | null, body?: unknown) => void) => void): void;
  route(options: {
    method: string[];
    url: string;
    handler: (request: { raw: IncomingMessage }, reply: { raw: ServerResponse; hijack(): void }) => void;
  }): void;
  addHook(name: 'onClose', fn: () => Promise<void>): void;
}

export async function docketDashboard(fastify: FastifyLike, options: FastifyDashboardOptions): Promise<void> {
  const { app, prefix: _prefix, ...rest } = options;
  const dashboard = createDashboard(app, { ...rest, basePath: fastify.prefix });
  // The dashboard reads its forms from the raw stream: Fastify leaves the body unread in here.
  fastify.addContentTypeParser('application/x-www-form-urlencoded', (_request, _payload, done) => done(null));
  const handler = (request: { raw: IncomingMessage }, reply: { raw: ServerResponse; hijack(): void }) => {
    reply.hijack();
    dashboard.handle(request.raw, reply.raw);
  };
  for (const url of ['/', '/*']) fastify.route({ method: ['GET', 'HEAD', 'POST'], url, handler });
  fastify.addHook('onClose', () => dashboard.close());
}
