/**
 * Baseline (b): Socket.IO with @socket.io/redis-streams-adapter, the stock
 * way to fan messages out from Redis to many WebSocket servers. Viewers join
 * the room `m:<id>`; the bench's publisher emits each packet to that room
 * from its own Socket.IO instance, and the adapter carries it through Redis.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-streams-adapter';
import { logger } from '../../shared/log.js';

const log = logger('socketio-edge');

export class SocketIoEdge {
  readonly http: HttpServer;
  private readonly io: Server;
  private readonly redis: Redis;

  constructor(redisUrl: string) {
    this.redis = new Redis(redisUrl, { connectionName: 'socketio-edge', maxRetriesPerRequest: null });
    this.http = createServer();
    this.io = new Server(this.http, {
      transports: ['websocket'],
      perMessageDeflate: false,
      serveClient: false,
      maxHttpBufferSize: 64 * 1024,
      adapter: createAdapter(this.redis, { maxLen: 1000 }),
    });
    this.io.on('connection', (socket) => {
      socket.on('subscribe', (monitorId: number) => {
        // Joining a room is in memory with this adapter; a rejection would be logged, not lost.
        Promise.resolve(socket.join(`m:${monitorId}`))
          .catch((err) => log.error('cannot join the room', { monitor: monitorId, error: (err as Error).message }));
        socket.emit('ack', monitorId);
      });
    });
  }

  listen(): Promise<number> {
    return new Promise((resolve) => this.http.listen(0, '127.0.0.1', () => resolve((this.http.address() as { port: number }).port)));
  }

  async close(): Promise<void> {
    await this.io.close(); // resolves once the HTTP server has closed, as its callback did
    this.redis.disconnect();
  }
}
