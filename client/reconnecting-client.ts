/**
 * The Node reference client (`zmcast watch`, the tests, the benchmarks): the
 * client library (live-client.ts) on `ws` (node-socket.ts), with Node's
 * EventEmitter and the Node-only parts: the token in `Authorization: Bearer`,
 * an upgrade refused with 401/403/404 ending the client at once, the edge's
 * pings keeping a quiet connection alive, and `ended` to await. When its
 * connection is lost, the edge drains (1012) or sheds load, it reconnects with
 * backoff and jitter, cycling through the edges it was given, presents its
 * credentials again, re-sends every subscription, resumes events after the last
 * one it saw and lets the edge restart video at the latest keyframe. It stops
 * for good only when the edge says retrying cannot help (refused credentials,
 * revoked access) or when closed. docs/protocol.md, "Reconnecting", is the contract.
 */
import { EventEmitter } from 'node:events';
import { ConnectRefusedError, type ReceivedPacket } from './zmcast-client.js';
import type { BackoffOptions } from './backoff.js';
import { LiveClient, type EventsGap } from './live-client.js';
import { nodeSocketFactory } from './node-socket.js';
import type { AckReply, CodecReply, DroppedReply, ErrorReply, EventReply, StatusReply, Topic } from '../shared/protocol.js';
import { logger } from '../shared/log.js';

export type { EventsGap } from './live-client.js';

const log = logger('reconnecting-client');

export interface ReconnectingOptions {
  /** A fixed token, or a provider asked before every attempt (a fresh token per connection). */
  token?: string | (() => string | Promise<string>);
  /** `header` (default) sends `Authorization: Bearer`; `subprotocol` offers `zmcast.token.<token>` as browsers do. */
  tokenVia?: 'header' | 'subprotocol';
  headers?: Record<string, string>;
  backoff?: Partial<BackoffOptions>;
  /** An upgrade unanswered this long is a failed attempt (default 5 s). */
  handshakeTimeoutMs?: number;
  /**
   * A connection on which nothing arrived this long, not even the edge's ping
   * (every 30 s by default), is dead even if TCP has not noticed (default 75 s).
   */
  idleTimeoutMs?: number;
}

export interface Reconnecting {
  /** Failed attempts since the edge last delivered something, this one included. */
  attempt: number;
  delayMs: number;
  /** The close code, or 1006 when the attempt did not get a WebSocket (as browsers report it). */
  code: number;
  reason: string;
  /** The edge tried after `delayMs`. */
  url: string;
}

export type Ending =
  | { kind: 'closed'; code: number; reason: string }
  | { kind: 'refused'; url: string; error: ConnectRefusedError };

export interface ReconnectingClientEvents {
  connected: [{ url: string }];
  reconnecting: [Reconnecting];
  reconnected: [{ url: string; downtimeMs: number }];
  /** Re-initialise the decoder when `generation` or `epoch` differs from the last one. */
  codec: [CodecReply];
  packet: [ReceivedPacket];
  /** Each event once, in order, across reconnects. */
  event: [EventReply];
  eventsGap: [EventsGap];
  status: [StatusReply];
  ack: [AckReply];
  dropped: [DroppedReply];
  errorReply: [ErrorReply];
  /** The connection ended and will not be retried (also after `close()`). */
  close: [code: number, reason: string];
  /** The upgrade was refused with a status retrying cannot fix (401, 403, 404…). */
  refused: [ConnectRefusedError, url: string];
}

export class ReconnectingClient extends EventEmitter<ReconnectingClientEvents> {
  /** Resolves once the client has stopped for good. */
  readonly ended: Promise<Ending>;
  private resolveEnded!: (ending: Ending) => void;
  private readonly live: LiveClient;
  private opened = false;
  private lostAt = 0;

  private constructor(urls: string[], opts: ReconnectingOptions) {
    super();
    this.ended = new Promise((resolve) => (this.resolveEnded = resolve));
    const token = opts.token;
    this.live = new LiveClient({
      urls,
      getToken: typeof token === 'function' ? token : token === undefined ? undefined : () => token,
      // Tokens come from the caller (a file re-read per attempt); in-band refresh is for pages that can ask /login.
      refreshInBand: false,
      socketFactory: nodeSocketFactory({ tokenVia: opts.tokenVia, headers: opts.headers, handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 5_000 }),
      backoff: opts.backoff,
      idleTimeoutMs: opts.idleTimeoutMs ?? 75_000,
      onListenerError: (err) => log.error('a listener threw', { error: (err as Error).stack ?? String(err) }),
    });
    this.forward();
  }

  /** Starts connecting at once; subscribe and listen right away, nothing is missed. */
  static start(urls: string | string[], opts: ReconnectingOptions = {}): ReconnectingClient {
    return new ReconnectingClient(typeof urls === 'string' ? [urls] : urls, opts);
  }

  /** The edge connected now, or null between connections. */
  get url(): string | null {
    return this.live.url;
  }

  get reconnects(): number {
    return this.live.reconnects;
  }

  subscribeStream(monitorId: number, codec = 'auto'): void {
    this.live.subscribeStream(monitorId, { codec });
  }

  subscribeStatus(monitorId: number, intervalMs?: number): void {
    this.live.subscribeStatus(monitorId, intervalMs);
  }

  /** With `since`, starts after that event id; reconnects resume after the last event delivered. */
  subscribeEvents(monitorId: number, since?: string): void {
    this.live.subscribeEvents(monitorId, since);
  }

  unsubscribe(monitorId: number, topic: Topic): void {
    this.live.unsubscribe(monitorId, topic);
  }

  close(): Promise<void> {
    return this.live.close();
  }

  private forward(): void {
    const live = this.live;
    live.on('state', (s) => {
      if (s.state === 'open') {
        if (!this.opened) this.emit('connected', { url: s.url });
        else this.emit('reconnected', { url: s.url, downtimeMs: Date.now() - this.lostAt });
        this.opened = true;
      } else if (s.state === 'reconnecting') {
        if (s.attempt === 1) this.lostAt = Date.now();
        this.emit('reconnecting', { attempt: s.attempt, delayMs: s.delayMs!, code: s.code!, reason: s.reason ?? '', url: s.url });
      } else if (s.state === 'closed') {
        // Settled before the listeners run (they still hear first), so a throwing listener cannot leave `ended` pending.
        if (s.status !== undefined) {
          const error = new ConnectRefusedError(s.status);
          this.resolveEnded({ kind: 'refused', url: s.url, error });
          this.emit('refused', error, s.url);
        } else {
          this.resolveEnded({ kind: 'closed', code: s.code!, reason: s.reason ?? '' });
          this.emit('close', s.code!, s.reason ?? '');
        }
      }
    });
    live.on('codec', (c) => this.emit('codec', c));
    live.on('packet', (p) => {
      const data = Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength);
      this.emit('packet', { ...p.header, data, receivedAt: p.receivedAt });
    });
    live.on('event', (e) => this.emit('event', e));
    live.on('eventsGap', (g) => this.emit('eventsGap', g));
    live.on('status', (s) => this.emit('status', s));
    live.on('ack', (a) => this.emit('ack', a));
    live.on('dropped', (d) => this.emit('dropped', d));
    live.on('error', (e) => this.emit('errorReply', e));
  }
}
