/**
 * The reference client for the `/ws` protocol, used by `zmcast watch`, the
 * tests and the benchmarks. It decodes with the same module the edge encodes
 * with (shared/packet.ts, shared/protocol.ts).
 */
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import { decodePacket, type Packet } from '../shared/packet.js';
import { toWsUrl } from './edge-url.js';
import type { CodecReply, DroppedReply, ErrorReply, EventReply, StatusReply, AckReply } from '../shared/protocol.js';

export interface ReceivedPacket extends Packet {
  receivedAt: number;
}

export interface ZmcastClientEvents {
  codec: [CodecReply];
  packet: [ReceivedPacket];
  event: [EventReply];
  status: [StatusReply];
  ack: [AckReply];
  dropped: [DroppedReply];
  errorReply: [ErrorReply];
  message: [Record<string, unknown>];
  close: [code: number, reason: string];
}

export interface ConnectOptions {
  /** Sent as `Authorization: Bearer`: a URL would carry it into access logs. */
  token?: string;
  headers?: Record<string, string>;
  /** WebSocket subprotocols, e.g. `['zmcast', 'zmcast.token.<jwt>']`. */
  protocols?: string[];
  /** Gives up on an upgrade not answered within this time (an edge frozen or unreachable). */
  handshakeTimeoutMs?: number;
}

/** The edge answered the upgrade with an HTTP status instead of a WebSocket. */
export class ConnectRefusedError extends Error {
  constructor(readonly status: number) {
    super(`edge refused the connection: HTTP ${status}`);
  }
}

export { toWsUrl };

export class ZmcastClient extends EventEmitter<ZmcastClientEvents> {
  private constructor(readonly ws: WebSocket) {
    super();
    ws.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    ws.on('close', (code, reason) => this.emit('close', code, reason.toString()));
    ws.on('error', () => {}); // surfaced as 'close'
  }

  static connect(url: string, opts: ConnectOptions = {}): Promise<ZmcastClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(toWsUrl(url), opts.protocols ?? [], {
        headers: opts.token ? { ...opts.headers, Authorization: `Bearer ${opts.token}` } : opts.headers,
        perMessageDeflate: false,
        handshakeTimeout: opts.handshakeTimeoutMs,
      });
      const client = new ZmcastClient(ws);
      ws.once('open', () => resolve(client));
      ws.once('error', reject);
      ws.once('unexpected-response', (req, res) => {
        // The one-line body is not needed: the status says what to do. Freeing the socket now.
        req.destroy();
        reject(new ConnectRefusedError(res.statusCode ?? 0));
      });
    });
  }

  send(command: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(command));
  }

  subscribeStream(monitorId: number, codec = 'auto'): void {
    this.send({ command: 'subscribe', topic: 'stream', monitor_id: monitorId, codec });
  }

  subscribeEvents(monitorId: number, since?: string): void {
    this.send({ command: 'subscribe', topic: 'events', monitor_id: monitorId, ...(since ? { since } : {}) });
  }

  /** Resolves with the next message of `type` (or rejects after `timeoutMs`). */
  next<K extends keyof ZmcastClientEvents>(type: K, timeoutMs = 10_000): Promise<ZmcastClientEvents[K]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off(type, handler as never);
        reject(new Error(`no ${String(type)} within ${timeoutMs} ms`));
      }, timeoutMs);
      const handler = (...args: ZmcastClientEvents[K]) => {
        clearTimeout(timer);
        resolve(args);
      };
      this.once(type, handler as never);
    });
  }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve());
      this.ws.close();
    });
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    const receivedAt = Date.now();
    if (isBinary) {
      this.emit('packet', { ...decodePacket(data), receivedAt });
      return;
    }
    const msg = JSON.parse(data.toString()) as Record<string, unknown>;
    this.emit('message', msg);
    switch (msg.type) {
      case 'codec': this.emit('codec', msg as unknown as CodecReply); break;
      case 'event': this.emit('event', msg as unknown as EventReply); break;
      case 'status': this.emit('status', msg as unknown as StatusReply); break;
      case 'ack': this.emit('ack', msg as unknown as AckReply); break;
      case 'dropped': this.emit('dropped', msg as unknown as DroppedReply); break;
      case 'error': this.emit('errorReply', msg as unknown as ErrorReply); break;
    }
  }
}
