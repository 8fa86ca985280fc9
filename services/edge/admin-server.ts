/**
 * The edge's admin listener (`edge.adminHost`:`edge.adminPort`, loopback by
 * default): `/metrics` and the detailed `/readyz` (auth mode and the warnings
 * an operator must see, such as ZoneMinder's default secret). Metric labels
 * name monitors and count their viewers, and the warnings describe the auth
 * setup: operators' business, not that of whoever reaches the public port,
 * which answers `/readyz` with a status and one terse line only.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AuthStatus } from '../../shared/auth/index.js';
import { logger } from '../../shared/log.js';
import { registry } from '../../shared/metrics.js';
import { textReply as text } from './http-reply.js';

const log = logger('edge-admin');

export interface AdminSources {
  /** Why the edge cannot serve now (`redis unreachable`…), or null. */
  problem(): Promise<string | null>;
  auth(): AuthStatus;
}

export function createAdminServer(sources: AdminSources): Server {
  return createServer((req, res) => {
    answer(req, res, sources).catch((err) => {
      // A collector that throws must not become an unhandled rejection: log it, answer 500.
      log.error('admin request failed', { path: pathOf(req), error: (err as Error).stack });
      if (!res.headersSent) text(res, 500, 'Internal error');
      else res.destroy();
    });
  });
}

async function answer(req: IncomingMessage, res: ServerResponse, sources: AdminSources): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') return text(res, 405, 'Method not allowed');
  const path = pathOf(req);
  if (path === '/metrics') {
    const body = await registry.metrics();
    res.writeHead(200, { 'content-type': registry.contentType });
    res.end(body);
    return;
  }
  if (path === '/readyz') {
    const problem = await sources.problem();
    const { mode, warnings } = sources.auth();
    return text(res, problem ? 503 : 200, `${problem ?? 'ready'}\nauth: ${mode}\n${warnings.map((w) => `warning: ${w}\n`).join('')}`);
  }
  if (path === '/healthz') return text(res, 200, 'ok');
  text(res, 404, 'Not found');
}

function pathOf(req: IncomingMessage): string {
  return (req.url ?? '/').split('?')[0];
}
