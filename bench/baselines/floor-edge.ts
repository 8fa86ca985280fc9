/**
 * Not a product: the least work any Node edge can do for the same viewers,
 * to show where the machine's floor is. One XREAD loop for every monitor,
 * each packet framed once, then one corked write per socket, with no
 * WebSocket library, protocol, budget or metrics. What zmcast spends above
 * this is its own; what this spends is the kernel's.
 */
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { Redis } from 'ioredis';
import { logger } from '../../shared/log.js';
import { monitorKeys } from '../../shared/redis-keys.js';

const log = logger('floor-edge');

type Entry = [id: Buffer, fields: Buffer[]];

export class FloorEdge {
  readonly http: Server;
  private readonly redis: Redis;
  private readonly viewers = new Map<number, Set<Socket>>();
  private stopped = false;

  constructor(redisUrl: string) {
    this.redis = new Redis(redisUrl, { connectionName: 'floor-edge', maxRetriesPerRequest: null });
    this.http = createServer((_req, res) => res.writeHead(404).end());
    this.http.on('upgrade', (req, socket: Socket) => this.accept(req.headers['sec-websocket-key'] as string, socket));
  }

  listen(): Promise<number> {
    return new Promise((resolve) => this.http.listen(0, '127.0.0.1', () => resolve((this.http.address() as { port: number }).port)));
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.redis.disconnect();
    for (const set of this.viewers.values()) for (const s of set) s.destroy();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private accept(key: string, socket: Socket): void {
    socket.setNoDelay(true);
    socket.on('error', () => socket.destroy());
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${key}\r\n\r\n`);
    socket.write(text('{"type":"hello"}'));
    // The only thing a viewer sends is its subscribe command (masked): take the monitor id from the first frame.
    socket.once('data', (d: Buffer) => {
      const len = d[1] & 0x7f;
      const off = len < 126 ? 2 : 4;
      const mask = d.subarray(off, off + 4);
      const body = Buffer.from(d.subarray(off + 4, off + 4 + (len < 126 ? len : d.readUInt16BE(2)))).map((b, i) => b ^ mask[i & 3]);
      const monitorId = (JSON.parse(Buffer.from(body).toString()) as { monitor_id: number }).monitor_id;
      socket.write(text('{"type":"ack"}'));
      let set = this.viewers.get(monitorId);
      if (!set) {
        set = new Set();
        this.viewers.set(monitorId, set);
        if (this.viewers.size === 1) {
          this.read().catch((err) => log.error('read loop stopped', { error: (err as Error).stack ?? String(err) }));
        }
      }
      set.add(socket);
      socket.once('close', () => set.delete(socket));
    });
  }

  private async read(): Promise<void> {
    const last = new Map<number, string>();
    while (!this.stopped) {
      const ids = [...this.viewers.keys()];
      let reply: [Buffer, Entry[]][] | null;
      try {
        reply = (await this.redis.xreadBuffer('COUNT', 500, 'BLOCK', 1000, 'STREAMS', ...ids.map((id) => monitorKeys(id).video), ...ids.map((id) => last.get(id) ?? '$'))) as [Buffer, Entry[]][] | null;
      } catch {
        return;
      }
      if (!reply) continue;
      for (const [key, entries] of reply) {
        const id = Number(/\{m:(\d+)\}/.exec(key.toString())![1]);
        for (const [entryId, fields] of entries) {
          last.set(id, entryId.toString());
          if (fields[0].toString() !== 'p') continue;
          const payload = fields[1];
          const header = binaryHeader(payload.length);
          for (const s of this.viewers.get(id) ?? []) {
            s.cork();
            s.write(header);
            s.write(payload);
            s.uncork();
          }
        }
      }
    }
  }
}

function binaryHeader(len: number): Buffer {
  const h = Buffer.allocUnsafe(len < 126 ? 2 : len < 65536 ? 4 : 10);
  h[0] = 0x82;
  if (len < 126) h[1] = len;
  else if (len < 65536) { h[1] = 126; h.writeUInt16BE(len, 2); }
  else { h[1] = 127; h.writeUInt32BE(0, 2); h.writeUInt32BE(len, 6); }
  return h;
}

function text(s: string): Buffer {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from([0x81, b.length]), b]);
}
