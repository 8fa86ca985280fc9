/**
 * The edge: an HTTP server with `ws` in noServer mode. Routes:
 *   /ws                  zmcast protocol, many monitors per socket
 *   /monitors/:id/ws     ZoneMinder's per-monitor WebSocket draft
 *   /                    the live-view page
 *   /monitors /healthz /readyz /metrics
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Config } from '../../shared/config.js';
import type { RedisClient } from '../../shared/redis.js';
import { registry, edgeMetrics } from '../../shared/metrics.js';
import { CloseCode, PROTOCOL_VERSION, type HelloReply } from '../../shared/protocol.js';
import { logger } from '../../shared/log.js';
import { Hub } from './hub.js';
import { loadStaticFiles } from './static-files.js';
import { ClientSession } from './client-session.js';
import type { WireFormat } from './video-subscription.js';

const log = logger('edge');
const PING_EVERY_MS = 30_000;
const PER_MONITOR_PATH = /^\/monitors\/(\d{1,9})\/ws$/;

export class EdgeServer {
  readonly http: Server;
  readonly hub: Hub;
  private readonly wss: WebSocketServer;
  private readonly alive = new WeakSet<WebSocket>();
  private readonly pinger: NodeJS.Timeout;
  private readonly files = loadStaticFiles();
  private readonly m = edgeMetrics();

  constructor(private readonly redis: RedisClient, private readonly config: Config) {
    this.hub = new Hub(redis);
    // Compression stays off: video does not compress, and pre-framed writes rely on it.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: config.edge.maxPayload, perMessageDeflate: false, clientTracking: true });
    this.http = createServer((req, res) => void this.onRequest(req, res));
    this.http.on('upgrade', (req, socket, head) => void this.onUpgrade(req, socket, head));
    this.pinger = setInterval(() => this.ping(), PING_EVERY_MS).unref();
  }

  listen(port = this.config.edge.port, host = this.config.edge.host): Promise<number> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, host, () => resolve((this.http.address() as { port: number }).port));
    });
  }

  async close(): Promise<void> {
    clearInterval(this.pinger);
    for (const ws of this.wss.clients) ws.close(CloseCode.GoingAway, 'edge shutting down');
    await this.hub.stop();
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(res, 405, 'Method not allowed');
    if (path === '/healthz') return reply(res, 200, 'ok');
    if (path === '/readyz') {
      const ok = await Promise.race([
        this.redis.ping().then(() => true, () => false),
        new Promise<boolean>((r) => setTimeout(() => r(false), 1000).unref()),
      ]);
      return reply(res, ok ? 200 : 503, ok ? 'ready' : 'redis unreachable');
    }
    if (path === '/metrics') {
      res.writeHead(200, { 'content-type': registry.contentType });
      res.end(await registry.metrics());
      return;
    }
    if (path === '/monitors') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(await this.hub.directory.list()));
      return;
    }
    const file = this.files.get(path);
    if (file) {
      res.writeHead(200, { 'content-type': file.type, 'content-length': file.body.length, 'cache-control': 'no-cache' });
      res.end(req.method === 'HEAD' ? undefined : file.body);
      return;
    }
    reply(res, 404, 'Not found');
  }

  private async onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    const path = (req.url ?? '/').split('?')[0];
    let format: WireFormat;
    let monitorId: number | undefined;
    const perMonitor = PER_MONITOR_PATH.exec(path);
    if (path === '/ws') {
      format = 'zmcast';
    } else if (perMonitor) {
      format = 'zoneminder';
      monitorId = Number(perMonitor[1]);
      if (!(await this.hub.directory.exists(monitorId).catch(() => false))) return refuse(socket, 404, 'Unknown monitor', this.m);
    } else {
      return refuse(socket, 404, 'Not found', this.m);
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, socket as Socket, format, monitorId));
  }

  private accept(ws: WebSocket, socket: Socket, format: WireFormat, monitorId?: number): void {
    socket.setNoDelay(true);
    this.m.connections.inc({ endpoint: format === 'zmcast' ? '/ws' : '/monitors/:id/ws' });
    this.m.clients.inc();
    ws.once('close', () => this.m.clients.dec());
    this.alive.add(ws);
    ws.on('pong', () => this.alive.add(ws));
    new ClientSession(ws, socket, this.hub, format, { ...this.config.edge }, monitorId);
    if (format === 'zmcast') {
      const hello: HelloReply = { type: 'hello', protocol: PROTOCOL_VERSION, server: 'zmcast' };
      ws.send(JSON.stringify(hello));
    }
    log.debug('client connected', { format, monitor: monitorId });
  }

  /** Connections that miss a whole ping interval are gone: free their resources. */
  private ping(): void {
    for (const ws of this.wss.clients) {
      if (!this.alive.has(ws)) {
        this.m.droppedClients.inc({ reason: 'ping_timeout' });
        ws.terminate();
        continue;
      }
      this.alive.delete(ws);
      ws.ping();
    }
  }
}

function reply(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function refuse(socket: Duplex, status: number, body: string, m: ReturnType<typeof edgeMetrics>): void {
  m.refused.inc({ reason: status === 404 ? 'not_found' : String(status) });
  const text = `${body}\n`;
  socket.end(`HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : 'Error'}\r\nContent-Type: text/plain\r\nContent-Length: ${text.length}\r\nConnection: close\r\n\r\n${text}`);
}
