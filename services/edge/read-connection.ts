/**
 * The connection the edge's stream reader blocks on. On a single Redis it is
 * a plain socket speaking RESP (`resp.ts`) rather than ioredis: measured
 * 2026-11-30 at 100 viewers of one monitor, ioredis's command and reply
 * handling was a fifth of the edge's main thread, more than the whole rest of
 * zmcast's per-packet code. On a Cluster the reader keeps ioredis, which
 * knows which node holds a monitor's slot and follows it through failovers.
 *
 * The same connection, subscribed to shard channels, is the edge's push
 * reader (push-reader.ts): a pushed `smessage` goes to 'message' listeners,
 * every other reply to the command it answers.
 *
 * The connection reconnects by itself with the same capped backoff as every
 * other Redis connection; a command in flight when it drops is failed (the
 * reader notices, counts the loss and checks its history), and a command
 * sent while it is down waits until it is back.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { Redis } from 'ioredis';
import { duplicate, isCluster, reconnectDelay, watchConnection, type RedisClient } from '../../shared/redis.js';
import { encodeCommand, RespError, RespParser, type RespValue } from './resp.js';
import { allocPacket } from './packet-memory.js';
import { writeNow } from './fanout-batch.js';
import type { StreamEntry } from './stream-reader.js';

export type XReadReply = [key: Buffer, entries: StreamEntry[]][];

/** What the stream reader needs of its connection. */
export interface ReadLink {
  clientId(): Promise<number>;
  /** XREAD COUNT … BLOCK … STREAMS keys ids; null when the block time passed with nothing new. */
  xread(count: number, blockMs: number, keys: readonly string[], ids: readonly string[]): Promise<XReadReply | null>;
  /** Ends the connection for good. */
  disconnect(): void;
  /** 'close': the connection dropped (it reconnects by itself unless disconnected). */
  on(event: 'close', listener: () => void): unknown;
}

/** A read link for `redis`'s server(s), named `name` in CLIENT LIST. */
export function openReadLink(redis: RedisClient, name: string): ReadLink {
  if (isCluster(redis)) return ioredisLink(duplicate(redis, name));
  return readConnectionLike(redis, name);
}

/** A ReadConnection to the server, database and user of `redis`, named `name` in CLIENT LIST. */
export function readConnectionLike(redis: Redis, name: string): ReadConnection {
  const o = redis.options;
  return new ReadConnection({
    host: o.host ?? '127.0.0.1',
    port: o.port ?? 6379,
    path: o.path,
    username: o.username,
    password: o.password,
    db: o.db ?? 0,
    tls: o.tls,
    name,
  });
}

export interface ReadConnectionOptions {
  host: string;
  port: number;
  /** A Unix socket instead of host and port. */
  path?: string;
  username?: string;
  password?: string;
  db: number;
  tls?: tls.ConnectionOptions;
  name: string;
}

interface Pending {
  resolve(value: RespValue): void;
  reject(err: Error): void;
}

export class ReadConnection extends EventEmitter implements ReadLink {
  private socket: net.Socket | null = null;
  private ready = false;
  private ended = false;
  private attempts = 0;
  private retry: NodeJS.Timeout | null = null;
  /** Replies owed by Redis, oldest first: the handshake's, then the callers'. */
  private inFlight: Pending[] = [];
  /** Commands sent while the connection was down, sent once it is ready. */
  private offline: { command: string; pending: Pending }[] = [];
  // Packets (anything of a kilobyte or more) are read into buffers their frame can be built in without a copy.
  private readonly parser = new RespParser((reply) => this.onReply(reply), allocPacket, 1024);
  private readonly readBuffer = Buffer.allocUnsafeSlow(256 * 1024);

  constructor(private readonly opts: ReadConnectionOptions) {
    super();
    watchConnection(this, 'reader');
    this.connect();
  }

  /** True while connected and past the handshake (a command is sent at once). */
  get isReady(): boolean {
    return this.ready;
  }

  clientId(): Promise<number> {
    return this.call(['CLIENT', 'ID']) as Promise<number>;
  }

  // Not async: the reply's promise is handed on as it is, one promise and one microtask per packet fewer.
  xread(count: number, blockMs: number, keys: readonly string[], ids: readonly string[]): Promise<XReadReply | null> {
    return this.call(['XREAD', 'COUNT', count, 'BLOCK', blockMs, 'STREAMS', ...keys, ...ids]) as Promise<XReadReply | null>;
  }

  disconnect(): void {
    this.ended = true;
    if (this.retry) clearTimeout(this.retry);
    this.socket?.destroy();
    this.failAll(new Error('Connection is closed.'));
  }

  /** Sends one command; resolves with its reply, rejects with an error reply or a lost connection. */
  call(args: readonly (string | number)[]): Promise<RespValue> {
    return new Promise((resolve, reject) => {
      const pending = { resolve, reject };
      const command = encodeCommand(args);
      if (this.ended) reject(new Error('Connection is closed.'));
      else if (this.ready) this.send(command, pending);
      else this.offline.push({ command, pending });
    });
  }

  private connect(): void {
    const { host, port, path } = this.opts;
    const feed = (chunk: Buffer) => {
      try {
        this.parser.feed(chunk);
      } catch (err) {
        socket.destroy(err as Error); // a reply we cannot parse: start over on a fresh connection
      }
    };
    // Plain sockets read every chunk into one buffer (the parser copies what it keeps): a read
    // allocates nothing, where Node's default is a fresh 64 KiB buffer per read, garbage at once.
    const onread = {
      buffer: this.readBuffer,
      callback: (n: number) => {
        feed(this.readBuffer.subarray(0, n));
        return true;
      },
    };
    const socket = this.opts.tls
      ? tls.connect({ ...this.opts.tls, host, port, servername: this.opts.tls.servername ?? host })
      : path ? net.connect({ path, onread }) : net.connect({ port, host, onread });
    this.socket = socket;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    socket.on(this.opts.tls ? 'secureConnect' : 'connect', () => this.handshake());
    if (this.opts.tls) socket.on('data', feed);
    socket.on('error', (err) => this.emit('error', err));
    socket.on('close', () => this.onClose(socket));
  }

  /** AUTH, SELECT and SETNAME go first, pipelined; callers' commands follow once all answered. */
  private handshake(): void {
    const { username, password, db, name } = this.opts;
    const steps: (string | number)[][] = [];
    if (password) steps.push(username ? ['AUTH', username, password] : ['AUTH', password]);
    if (db) steps.push(['SELECT', db]);
    steps.push(['CLIENT', 'SETNAME', name]);
    let left = steps.length;
    const socket = this.socket!;
    for (const step of steps) {
      this.send(encodeCommand(step), {
        resolve: () => {
          if (--left === 0) this.onReady();
        },
        reject: (err) => socket.destroy(err),
      });
    }
  }

  private onReady(): void {
    this.ready = true;
    this.attempts = 0;
    const queued = this.offline;
    this.offline = [];
    for (const { command, pending } of queued) this.send(command, pending);
    this.emit('ready');
  }

  private send(command: string, pending: Pending): void {
    this.inFlight.push(pending);
    writeNow(this.socket!, Buffer.from(command));
  }

  private onReply(reply: RespValue): void {
    if (isPushedMessage(reply)) {
      this.emit('message', reply[1], reply[2]);
      return;
    }
    const pending = this.inFlight.shift();
    if (!pending) return;
    if (reply instanceof RespError) pending.reject(reply);
    else pending.resolve(reply);
  }

  private onClose(socket: net.Socket): void {
    if (socket !== this.socket) return;
    this.ready = false;
    this.socket = null;
    this.parser.reset();
    const cut = this.inFlight;
    this.inFlight = [];
    for (const p of cut) p.reject(new Error('Connection closed'));
    this.emit('close');
    if (this.ended) return;
    this.emit('reconnecting');
    this.retry = setTimeout(() => {
      this.retry = null;
      this.connect();
    }, reconnectDelay(this.attempts++));
  }

  private failAll(err: Error): void {
    const queued = [...this.inFlight, ...this.offline.map((o) => o.pending)];
    this.inFlight = [];
    this.offline = [];
    for (const p of queued) p.reject(err);
  }
}

const SMESSAGE = Buffer.from('smessage');

/** A message pushed on a shard channel: `smessage`, the channel, the message. */
function isPushedMessage(reply: RespValue): reply is [Buffer, Buffer, Buffer] {
  return Array.isArray(reply) && reply.length === 3 && reply[0] instanceof Buffer && SMESSAGE.equals(reply[0]);
}

/** The same link over an ioredis connection (Cluster: one per monitor, in the monitor's slot). */
function ioredisLink(conn: RedisClient): ReadLink {
  return {
    clientId: async () => Number(await conn.client('ID')),
    xread: async (count, blockMs, keys, ids) =>
      (await conn.xreadBuffer('COUNT', count, 'BLOCK', blockMs, 'STREAMS', ...keys, ...ids)) as XReadReply | null,
    disconnect: () => conn.disconnect(),
    on: (event, listener) => conn.on(event, listener),
  };
}
