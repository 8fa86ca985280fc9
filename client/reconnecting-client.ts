/**
 * A `/ws` client that comes back by itself: when its connection is lost, the
 * edge drains (1012) or sheds load, it reconnects with backoff and jitter,
 * cycling through the edges it was given, presents its credentials again,
 * re-sends every subscription, resumes events after the last one it saw and
 * lets the edge restart video at the latest keyframe. It stops for good only
 * when the edge says retrying cannot help (refused credentials, revoked
 * access) or when closed. docs/protocol.md, "Reconnecting", is the contract.
 */
import { EventEmitter } from 'node:events';
import {
  ConnectRefusedError,
  ZmcastClient,
  type ConnectOptions,
  type ReceivedPacket,
} from './zmcast-client.js';
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
import { checkEdgeUrl } from './edge-url.js';
import { EventResume } from './event-resume.js';
import { RETRY_CLOSE, retryStatus } from './retry-policy.js';
import {
  CloseCode,
  ErrorCode,
  type AckReply,
  type CodecReply,
  type DroppedReply,
  type ErrorReply,
  type EventReply,
  type StatusReply,
  type Topic,
} from '../shared/protocol.js';
import { logger } from '../shared/log.js';

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

export interface EventsGap {
  monitorId: number;
  /** `events_expired`: `since` is older than retention; `history_lost`: Redis lost the history `since` belonged to. */
  code: typeof ErrorCode.EventsExpired | typeof ErrorCode.HistoryLost;
  message: string;
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
  private ending: Ending | null = null;
  private readonly urls: string[];
  private readonly backoff: BackoffOptions;
  /** Keyed by topic and monitor: subscribing again replaces, as on the edge. */
  private readonly subscriptions = new Map<string, Record<string, unknown>>();
  private readonly resume = new EventResume();
  private current: ZmcastClient | null = null;
  private currentUrl: string | null = null;
  private nextUrl = 0;
  private attempt = 0;
  private connections = 0;
  private lostAt = 0;
  private retryTimer: NodeJS.Timeout | null = null;

  private constructor(urls: string[], private readonly opts: ReconnectingOptions) {
    super();
    if (urls.length === 0) throw new Error('no edge URL given');
    for (const url of urls) checkEdgeUrl(url);
    this.urls = urls;
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
    this.ended = new Promise((resolve) => (this.resolveEnded = resolve));
  }

  /** Starts connecting at once; subscribe and listen right away, nothing is missed. */
  static start(urls: string | string[], opts: ReconnectingOptions = {}): ReconnectingClient {
    const client = new ReconnectingClient(typeof urls === 'string' ? [urls] : urls, opts);
    client.attemptNow();
    return client;
  }

  /** The edge connected now, or null between connections. */
  get url(): string | null {
    return this.current ? this.currentUrl : null;
  }

  get reconnects(): number {
    return Math.max(0, this.connections - 1);
  }

  subscribeStream(monitorId: number, codec = 'auto'): void {
    this.subscribe({ command: 'subscribe', topic: 'stream', monitor_id: monitorId, codec });
  }

  subscribeStatus(monitorId: number, intervalMs?: number): void {
    this.subscribe({ command: 'subscribe', topic: 'status', monitor_id: monitorId, ...(intervalMs ? { interval_ms: intervalMs } : {}) });
  }

  /** With `since`, starts after that event id; reconnects resume after the last event delivered. */
  subscribeEvents(monitorId: number, since?: string): void {
    if (since) this.resume.startFrom(monitorId, since);
    this.subscribe({ command: 'subscribe', topic: 'events', monitor_id: monitorId });
  }

  unsubscribe(monitorId: number, topic: Topic): void {
    this.subscriptions.delete(`${topic}:${monitorId}`);
    this.current?.send({ command: 'unsubscribe', topic, monitor_id: monitorId });
  }

  async close(): Promise<void> {
    if (this.ending) return;
    const open = this.current;
    this.finish({ kind: 'closed', code: 1000, reason: 'closed by client' });
    await open?.close();
  }

  private subscribe(command: Record<string, unknown>): void {
    this.subscriptions.set(`${String(command.topic)}:${String(command.monitor_id)}`, command);
    this.current?.send(this.withResume(command));
  }

  private withResume(command: Record<string, unknown>): Record<string, unknown> {
    return command.topic === 'events' ? { ...command, ...this.resume.resumePoint(command.monitor_id as number) } : command;
  }

  /**
   * connect() turns every failure to connect into a retry or an ending; what can still reject it is
   * one of our listeners throwing. That is logged here rather than left to exit the process.
   */
  private attemptNow(): void {
    this.connect().catch((err) => log.error('a listener threw while connecting', { error: (err as Error).stack ?? String(err) }));
  }

  private async connect(): Promise<void> {
    this.retryTimer = null;
    const url = this.urls[this.nextUrl];
    // The next attempt goes to the next edge, whatever happens to this one: a dead edge costs one attempt.
    this.nextUrl = (this.nextUrl + 1) % this.urls.length;
    let client: ZmcastClient;
    try {
      client = await ZmcastClient.connect(url, await this.credentials());
    } catch (err) {
      if (this.ending) return;
      if (err instanceof ConnectRefusedError && !retryStatus(err.status)) return this.finish({ kind: 'refused', url, error: err });
      return this.retry(1006, (err as Error).message, err instanceof ConnectRefusedError && err.status === 429);
    }
    if (this.ending) {
      // oxlint-disable-next-line typescript/no-floating-promises -- ZmcastClient.close() never rejects: it resolves on the socket's close
      void client.close();
      return;
    }
    this.adopt(client, url);
  }

  /** Asked on every attempt, so a provider can hand out a fresh token each time. */
  private async credentials(): Promise<ConnectOptions> {
    const token = typeof this.opts.token === 'function' ? await this.opts.token() : this.opts.token;
    const options: ConnectOptions = { headers: this.opts.headers, handshakeTimeoutMs: this.opts.handshakeTimeoutMs ?? 5_000 };
    if (token && this.opts.tokenVia === 'subprotocol') options.protocols = ['zmcast', `zmcast.token.${token}`];
    else if (token) options.token = token;
    return options;
  }

  private adopt(client: ZmcastClient, url: string): void {
    this.current = client;
    this.currentUrl = url;
    this.watchIdle(client);
    // `hello` comes from any edge that accepts sockets; anything else shows this one serves us.
    client.on('message', (m) => { if (m.type !== 'hello') this.attempt = 0; });
    client.on('codec', (c) => this.emit('codec', c));
    client.on('packet', (p) => this.emit('packet', p));
    client.on('status', (s) => this.emit('status', s));
    client.on('ack', (a) => this.emit('ack', a));
    client.on('dropped', (d) => this.emit('dropped', d));
    client.on('event', (e) => {
      // An edge from before epochs sends none (nor does one whose Redis has none yet): ids alone order events.
      if (this.resume.accept(e.monitor_id, e.id, e.epoch || undefined)) this.emit('event', e);
    });
    client.on('errorReply', (e) => {
      this.emit('errorReply', e);
      if ((e.code === ErrorCode.EventsExpired || e.code === ErrorCode.HistoryLost) && e.monitor_id !== undefined) {
        this.emit('eventsGap', { monitorId: e.monitor_id, code: e.code, message: e.message });
      }
    });
    client.on('close', (code, reason) => this.onClose(client, code, reason));
    for (const command of this.subscriptions.values()) client.send(this.withResume(command));
    if (this.connections++ === 0) this.emit('connected', { url });
    else this.emit('reconnected', { url, downtimeMs: Date.now() - this.lostAt });
  }

  /** Terminates a connection that went silent: a frozen edge or a dead path TCP would take minutes to notice. */
  private watchIdle(client: ZmcastClient): void {
    const timer = setTimeout(() => client.ws.terminate(), this.opts.idleTimeoutMs ?? 75_000).unref();
    const alive = () => timer.refresh();
    client.ws.on('message', alive);
    client.ws.on('ping', alive);
    client.once('close', () => clearTimeout(timer));
  }

  private onClose(client: ZmcastClient, code: number, reason: string): void {
    if (client !== this.current) return;
    this.current = null;
    if (this.ending) return;
    if (!RETRY_CLOSE.has(code)) return this.finish({ kind: 'closed', code, reason });
    this.lostAt = Date.now();
    this.retry(code, reason, code === CloseCode.RateLimited);
  }

  private retry(code: number, reason: string, rateLimited: boolean): void {
    this.attempt++;
    const delayMs = backoffDelay(this.attempt, this.backoff, rateLimited);
    // Armed before listeners hear of it, so a listener's close() cancels it.
    this.retryTimer = setTimeout(() => this.attemptNow(), delayMs);
    this.emit('reconnecting', { attempt: this.attempt, delayMs, code, reason, url: this.urls[this.nextUrl] });
  }

  private finish(ending: Ending): void {
    if (this.ending) return;
    this.ending = ending;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.current = null;
    // Settled before the listeners run (they still hear first: awaiting code runs after them), so a throwing listener cannot leave `ended` pending.
    this.resolveEnded(ending);
    if (ending.kind === 'closed') this.emit('close', ending.code, ending.reason);
    else this.emit('refused', ending.error, ending.url);
  }
}
