/**
 * The edge: an HTTP(S) server with `ws` in noServer mode. Routes:
 *   /                    the live-view page
 *   /ws                  zmcast protocol, many monitors per socket
 *   /monitors/:id/ws     ZoneMinder's per-monitor WebSocket draft
 *   /monitors            the monitors the caller may watch (credentials required)
 *   /monitors/:id/snapshot.jpg, /monitors/:id/mjpeg, …/cgi-bin/nph-zms
 *                        pictures over HTTP (picture-routes.ts), same credentials
 *   /login               user and password (or a valid token) for a fresh token (login-route.ts)
 *   /healthz /readyz     for load balancers: a status and one terse line
 * and, on the admin listener (admin-server.ts), /metrics and the detailed /readyz.
 * Every upgrade is checked before it is accepted: path, Origin, capacity,
 * credentials and, on the per-monitor form, permission for that monitor.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Config } from '../../shared/config.js';
import type { RedisClient } from '../../shared/redis.js';
import { edgeMetrics } from '../../shared/metrics.js';
import { CloseCode, PROTOCOL_VERSION, type HelloReply } from '../../shared/protocol.js';
import { AuthErrorCode, chooseSubprotocol, isAuthError, type Authenticator, type Principal } from '../../shared/auth/index.js';
import { logger } from '../../shared/log.js';
import { within } from '../../shared/within.js';
import { Hub } from './hub.js';
import { ClientSession } from './client-session.js';
import { SessionAuth } from './session-auth.js';
import { ConnectionCounter, type ConnectionSlot } from './connection-counter.js';
import { loadStaticFiles, PAGE_HEADERS } from './static-files.js';
import { createTlsServer, type TlsServer } from './tls.js';
import type { WireFormat } from './video-subscription.js';
import { createAdminServer } from './admin-server.js';
import { listMonitors } from './monitor-list.js';
import { loginRoute } from './login-route.js';
import { originAllowed } from './origin-check.js';
import { textReply as reply } from './http-reply.js';
import { PictureClient } from '../../shared/pictures/picture-client.js';
import { PictureHub } from './picture-channel.js';
import { PictureRoutes } from './picture-routes.js';
import { useNativeWrites } from './fanout-batch.js';

const log = logger('edge');
const PER_MONITOR_PATH = /^\/monitors\/(\d{1,9})\/ws$/;
const READY_PING_MS = 1000;
/** A refused client gets this long to read the answer before its socket is destroyed. */
const REFUSAL_LINGER_MS = 1000;

export class EdgeServer {
  readonly http: Server;
  readonly hub: Hub;
  readonly pictures: PictureHub;
  private readonly pictureRoutes: PictureRoutes;
  private readonly wss: WebSocketServer;
  private readonly sessions = new Set<ClientSession>();
  private readonly alive = new WeakSet<WebSocket>();
  /** The payload of the last ping each connection was sent: only a pong that echoes it counts. */
  private readonly pings = new WeakMap<WebSocket, Buffer>();
  private admin: Server | null = null;
  private readonly counter: ConnectionCounter;
  private readonly timers: NodeJS.Timeout[];
  private readonly files = loadStaticFiles();
  private readonly tls: TlsServer | null;
  private readonly m = edgeMetrics();
  private draining = false;
  private pinging: Promise<string> | null = null;

  constructor(
    private readonly redis: RedisClient,
    private readonly config: Config,
    private readonly auth: Authenticator,
  ) {
    this.hub = new Hub(redis);
    useNativeWrites(config.edge.nativeWrites);
    this.counter = new ConnectionCounter(config.edge);
    this.pictures = new PictureHub(redis, () => new PictureClient(redis));
    this.pictureRoutes = new PictureRoutes({
      auth, directory: this.hub.directory, pictures: this.pictures, currentConfig: (id) => this.hub.currentConfig(id),
      counter: this.counter, limits: config.edge, revalidateMs: config.auth.revalidateMs,
    });
    // Compression stays off: video does not compress, and pre-framed writes rely on it.
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: config.edge.maxPayload,
      perMessageDeflate: false,
      clientTracking: true,
      handleProtocols: (offered) => chooseSubprotocol(offered),
    });
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.onRequest(req, res).catch((err) => {
        log.error('request failed', { path: (req.url ?? '/').split('?')[0], error: (err as Error).stack });
        if (!res.headersSent) reply(res, 500, 'Internal error');
        else res.destroy();
      });
    };
    // A client must send its whole upgrade request in time; half-open handshakes are cut.
    // Node checks these timeouts only every connectionsCheckingInterval (30 s by
    // default), which would let a silent socket live three times the setting.
    const timeouts = {
      headersTimeout: config.edge.handshakeTimeoutMs,
      requestTimeout: config.edge.handshakeTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(config.edge.handshakeTimeoutMs / 4))),
    };
    this.tls = config.edge.tlsCert ? createTlsServer(config.edge.tlsCert, config.edge.tlsKey, timeouts, handler) : null;
    this.http = this.tls?.server ?? createServer(timeouts, handler);
    this.http.on('upgrade', (req, socket, head) => {
      this.onUpgrade(req, socket, head).catch((err) => {
        log.error('upgrade failed', { error: (err as Error).stack });
        refuse(socket, 500, 'Internal Server Error', 'Internal error', 'internal', this.m);
      });
    });
    this.timers = [
      setInterval(() => this.ping(), config.edge.pingIntervalMs).unref(),
      setInterval(() => this.revalidateAll(), config.auth.revalidateMs).unref(),
    ];
  }

  listen(port = this.config.edge.port, host = this.config.edge.host): Promise<number> {
    return listenOn(this.http, port, host);
  }

  /** Starts the admin listener (/metrics, detailed /readyz) on `port` (0: any free port); resolves to the port. */
  listenAdmin(port: number, host = this.config.edge.adminHost): Promise<number> {
    this.admin ??= createAdminServer({ problem: () => this.problem(), auth: () => this.auth.status() });
    return listenOn(this.admin, port, host);
  }

  /**
   * Takes a re-read configuration (SIGHUP): the authenticator's users, grants
   * and secret, then checks every open connection against them at once, so a
   * rotated secret or a removed user does not wait for the next revalidation.
   */
  reload(config: Config): void {
    this.auth.reload(config.auth);
    this.revalidateAll();
  }

  /**
   * Drains: stops accepting, tells every client to reconnect elsewhere (1012,
   * service restart), waits up to `graceMs` for them to go, then cuts the rest.
   */
  async close(graceMs = 2000): Promise<void> {
    this.draining = true;
    for (const t of this.timers) clearInterval(t);
    this.tls?.close();
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    const clients = [...this.wss.clients];
    for (const ws of clients) ws.close(CloseCode.ServiceRestart, 'edge restarting: reconnect');
    const deadline = Date.now() + graceMs;
    while (clients.some((ws) => ws.readyState !== ws.CLOSED) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const ws of clients) if (ws.readyState !== ws.CLOSED) ws.terminate();
    await this.hub.stop();
    await this.pictures.stop();
    this.http.closeAllConnections();
    await closed;
    const admin = this.admin;
    if (admin?.listening) {
      const adminClosed = new Promise<void>((resolve) => admin.close(() => resolve()));
      admin.closeAllConnections();
      await adminClosed;
    }
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://edge.invalid');
    const path = url.pathname;
    if (path === '/login') return loginRoute(req, res, this.auth, this.config, this.tls !== null);
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(res, 405, 'Method not allowed');
    if (path === '/healthz') return reply(res, 200, 'ok');
    // Anonymous: the status and one line for load balancers; auth details are on the admin listener.
    if (path === '/readyz') {
      const problem = await this.problem();
      return reply(res, problem ? 503 : 200, `${problem ?? 'ready'}\n`);
    }
    if (path === '/monitors') return listMonitors(req, res, url, this.auth, this.hub.directory);
    if (await this.pictureRoutes.handle(req, res, url)) return;
    const file = this.files.get(path);
    if (file) {
      res.writeHead(200, { 'content-type': file.type, 'content-length': file.body.length, 'cache-control': 'no-cache', ...PAGE_HEADERS });
      res.end(req.method === 'HEAD' ? undefined : file.body);
      return;
    }
    reply(res, 404, 'Not found');
  }

  /** Why this edge cannot serve now, within a bounded time; null when it can. */
  private async problem(): Promise<string | null> {
    if (this.draining) return 'draining';
    // One PING at a time, however often the load balancer asks.
    this.pinging ??= this.redis.ping().finally(() => (this.pinging = null));
    if ((await within(this.pinging, READY_PING_MS)) === undefined) return 'redis unreachable';
    if (!this.hub.checkReaders() || !this.pictures.readersHealthy()) return 'redis reads are stalled';
    return null;
  }

  private async onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    if (this.draining) return refuse(socket, 503, 'Service Unavailable', 'Edge restarting', 'draining', this.m);
    const url = new URL(req.url ?? '/', 'http://edge.invalid');
    let format: WireFormat;
    let monitorId: number | undefined;
    const perMonitor = PER_MONITOR_PATH.exec(url.pathname);
    if (url.pathname === '/ws') format = 'zmcast';
    else if (perMonitor) {
      format = 'zoneminder';
      monitorId = Number(perMonitor[1]);
    } else return refuse(socket, 404, 'Not Found', 'Not found', 'not_found', this.m);

    if (!originAllowed(req.headers.origin, req.headers.host, this.tls !== null, this.config.edge.allowedOrigins)) return refuse(socket, 403, 'Forbidden', 'Origin not allowed', 'origin', this.m);
    const address = this.auth.clientAddress(req);
    // Taken before authenticating: handshakes in flight count against the caps.
    const slot = this.counter.reserve(address);
    if (typeof slot === 'string') return refuse(socket, 503, 'Service Unavailable', 'Too many connections', `capacity_${slot}`, this.m);
    let accepted = false;
    try {
      let principal: Principal | null = null;
      try {
        const { presented } = this.auth.fromRequest(req, url);
        principal = await this.auth.authenticate(presented, address);
      } catch (err) {
        if (!isAuthError(err)) throw err;
        const inBand = err.code === AuthErrorCode.CredentialsRequired && this.config.auth.inBandTimeoutMs > 0;
        if (!inBand) return refuse(socket, err.status, err.statusText, err.publicReason, `auth_${err.code}`, this.m);
      }
      if (principal && !slot.admitUser(principal.user)) {
        return refuse(socket, 503, 'Service Unavailable', 'Too many connections for this user', 'capacity_user', this.m);
      }
      if (monitorId !== undefined) {
        // Not permitted and nonexistent get the same answer, so ids cannot be probed.
        // Without a principal yet (in-band auth to come), nothing is revealed until it logs in.
        const hidden = principal !== null && (!principal.canView(monitorId) || !(await this.hub.directory.exists(monitorId).catch(() => false)));
        if (hidden) return refuse(socket, 404, 'Not Found', 'Unknown monitor', 'unknown_monitor', this.m);
      }
      if (socket.destroyed) return;
      // ws completes (or aborts, e.g. a bad Sec-WebSocket-Key) synchronously.
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        accepted = true;
        this.accept(ws, socket as Socket, format, address, principal, slot, monitorId);
      });
    } finally {
      if (!accepted) slot.release();
    }
  }

  private accept(ws: WebSocket, socket: Socket, format: WireFormat, address: string, principal: Principal | null, slot: ConnectionSlot, monitorId?: number): void {
    socket.setNoDelay(true);
    this.m.connections.inc({ endpoint: format === 'zmcast' ? '/ws' : '/monitors/:id/ws' });
    this.m.clients.inc();
    const session = new ClientSession(ws, socket, this.hub, this.pictures, format, { ...this.config.edge }, monitorId);
    session.auth = new SessionAuth(this.auth, principal, address, this.config.auth, {
      send: (msg) => session.sendJson(msg),
      close: (code, reason, metric) => session.close(code, reason, metric),
      changed: () => session.recheckPermissions(),
      admit: (name) => slot.admitUser(name),
    });
    this.sessions.add(session);
    ws.once('close', () => {
      this.sessions.delete(session);
      slot.release();
      this.m.clients.dec();
    });
    this.alive.add(ws);
    // A pong the edge did not ask for proves nothing: a client that never reads can send those.
    ws.on('pong', (data) => {
      if (this.pings.get(ws)?.equals(data)) this.alive.add(ws);
    });
    if (format === 'zmcast') {
      const hello: HelloReply = { type: 'hello', protocol: PROTOCOL_VERSION, server: 'zmcast' };
      session.sendJson(hello);
    }
    log.debug('client connected', { format, monitor: monitorId, user: principal?.user ?? null, client: address });
  }

  /** Revocation reaches open connections within one period (and at once after a reload). */
  private revalidateAll(): void {
    for (const s of this.sessions) {
      // SessionAuth.revalidate() turns every refusal into a close; what reaches here is a bug.
      s.auth.revalidate().catch((err) => log.error('revalidation failed', { error: (err as Error).stack }));
    }
  }

  /**
   * Connections that miss a whole ping interval are gone: free their resources.
   * Each ping carries a fresh random payload, and only a pong echoing it counts,
   * so a client must read what the edge sends to stay connected.
   */
  private ping(): void {
    for (const ws of this.wss.clients) {
      // Already closing (and counted under its reason): its close grace decides when it goes.
      if (ws.readyState !== ws.OPEN) continue;
      if (!this.alive.has(ws)) {
        this.m.droppedClients.inc({ reason: 'ping_timeout' });
        ws.terminate();
        continue;
      }
      this.alive.delete(ws);
      const payload = randomBytes(8);
      this.pings.set(ws, payload);
      ws.ping(payload);
    }
  }
}

function listenOn(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as { port: number }).port);
    });
  });
}

function refuse(socket: Duplex, status: number, statusText: string, body: string, reason: string, m: ReturnType<typeof edgeMetrics>): void {
  m.refused.inc({ reason });
  if (socket.destroyed) return;
  const text = `${body}\n`;
  socket.end(`HTTP/1.1 ${status} ${statusText}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
  // Its connection slot is already free: a client that never closes must not keep the descriptor.
  setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
}
