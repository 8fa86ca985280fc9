/** `/metrics` and `/healthz` for processes that run no edge (capture, workers). */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { logger } from './log.js';
import { registry } from './metrics.js';

const log = logger('metrics');

export function serveMetrics(port: number, host: string): Promise<Server> {
  const server = createServer((req, res) => {
    // A collector that throws must not become an unhandled rejection (Node exits on one): log, answer 500.
    onRequest(req, res).catch((err) => {
      log.error('request failed', { path: pathOf(req), error: (err as Error).stack });
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('Internal error');
      } else res.destroy();
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = pathOf(req);
  if (path === '/metrics') {
    const body = await registry.metrics();
    res.writeHead(200, { 'content-type': registry.contentType });
    res.end(body);
  } else if (path === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  } else {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('Not found');
  }
}

function pathOf(req: IncomingMessage): string {
  return (req.url ?? '/').split('?')[0];
}
