/**
 * Baseline (a): the edge most first versions are. Every viewer gets its own
 * Redis connection and its own blocking XREAD loop on the monitor's stream,
 * and every packet is framed again for every viewer by `ws.send`. It speaks
 * enough of the zmcast `/ws` protocol (hello, subscribe → ack, codec, binary
 * packets unchanged) for the same load generator to drive it.
 */
import { createServer, type Server } from 'node:http';
import { Redis } from 'ioredis';
import { WebSocketServer, type WebSocket } from 'ws';
import { logger } from '../../shared/log.js';
import { monitorKeys } from '../../shared/redis-keys.js';

const log = logger('naive-edge');

type Entry = [id: Buffer, fields: Buffer[]];

export class NaiveEdge {
  readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly readers = new Set<Redis>();

  constructor(private readonly redisUrl: string) {
    this.http = createServer((_req, res) => res.writeHead(404).end());
    this.wss = new WebSocketServer({ server: this.http, path: '/ws', perMessageDeflate: false });
    this.wss.on('connection', (ws) => this.accept(ws));
  }

  listen(): Promise<number> {
    return new Promise((resolve) => this.http.listen(0, '127.0.0.1', () => resolve((this.http.address() as { port: number }).port)));
  }

  async close(): Promise<void> {
    for (const r of this.readers) r.disconnect();
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private accept(ws: WebSocket): void {
    let reader: Redis | null = null;
    ws.send(JSON.stringify({ type: 'hello', protocol: 1, server: 'naive' }));
    ws.on('message', (data) => {
      const cmd = JSON.parse(data.toString()) as { command: string; topic?: string; monitor_id: number };
      if (cmd.command !== 'subscribe' || cmd.topic !== 'stream' || reader) return;
      reader = new Redis(this.redisUrl, { connectionName: 'naive-viewer', maxRetriesPerRequest: null });
      this.readers.add(reader);
      const following = reader;
      this.follow(ws, following, cmd.monitor_id).catch((err) => {
        // A viewer that leaves disconnects its reader, which fails the read in flight: not worth a line.
        if (following.status !== 'end') log.error('viewer stopped following', { monitor: cmd.monitor_id, error: (err as Error).message });
      });
    });
    ws.on('close', () => {
      if (!reader) return;
      this.readers.delete(reader);
      reader.disconnect();
    });
  }

  private async follow(ws: WebSocket, redis: Redis, monitorId: number): Promise<void> {
    const keys = monitorKeys(monitorId);
    ws.send(JSON.stringify({ type: 'ack', command: 'subscribe', topic: 'stream', interval_ms: 0, monitor_id: monitorId }));
    const config = await redis.hget(keys.meta, 'config');
    if (config) ws.send(JSON.stringify({ type: 'codec', monitor_id: monitorId, ...JSON.parse(config) }));
    let last = '$';
    while (ws.readyState === ws.OPEN && redis.status !== 'end') {
      let reply: [Buffer, Entry[]][] | null;
      try {
        reply = (await redis.xreadBuffer('COUNT', 100, 'BLOCK', 5000, 'STREAMS', keys.video, last)) as [Buffer, Entry[]][] | null;
      } catch {
        return;
      }
      if (!reply) continue;
      for (const [id, fields] of reply[0][1]) {
        last = id.toString();
        if (fields[0].toString() === 'p') ws.send(fields[1]);
      }
    }
  }
}
