/**
 * The zmcast client library, for browsers and Node alike: one `/ws`
 * connection carrying many monitors, that comes back by itself (backoff with
 * jitter, the next edge of the list), presents a token in the WebSocket
 * subprotocol, refreshes it in-band before it expires, re-sends every
 * subscription, resumes events after the last one seen (id and epoch) and lets
 * the edge restart video at the latest keyframe. docs/protocol.md is the
 * contract. Nothing here is Node-only: in Node, pass `WebSocket` from `ws`.
 *
 *   const client = new LiveClient({ urls: 'https://cams.example', getToken });
 *   client.on('packet', (p) => ...);
 *   client.subscribeStream(1, { quality: 'sub' });
 *   client.subscribePictures(2, { fps: 5, width: 480 }); // JPEGs, for a codec the viewer cannot decode
 */
import { decodeHeader, HEADER_BYTES, PacketKind, type PacketHeader } from '../shared/packet.js';
import {
  CloseCode,
  ErrorCode,
  type AckReply,
  type AuthExpiringReply,
  type AuthReply,
  type CodecReply,
  type DroppedReply,
  type ErrorReply,
  type EventReply,
  type PayloadMeta,
  type StatusReply,
  type Topic,
} from '../shared/protocol.js';
import type { Quality } from '../shared/redis-keys.js';
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
import { checkEdgeUrl, toWsUrl } from './edge-url.js';
import { EventResume } from './event-resume.js';
import { RETRY_CLOSE, retryStatus } from './retry-policy.js';
import { TypedEmitter } from './typed-emitter.js';

/** The two qualities a monitor may offer; `sub` falls back to `main` where there is no second stream. */
export type { Quality };

/** What a `WebSocket` must offer: the browser's, or `ws` in Node. */
export interface SocketLike {
  binaryType: string;
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  /** `status`: the HTTP answer of a refused upgrade, where the platform lets it be seen (not in browsers). */
  onclose: ((ev: { code: number; reason: string; status?: number }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  /** The edge's pings, where the platform lets them be seen (not in browsers): they keep an idle connection alive. */
  onping?: (() => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type SocketConstructor = new (url: string, protocols?: string[]) => SocketLike;
/** Opens one connection attempt presenting `token` (undefined: none). */
export type SocketFactory = (url: string, token: string | undefined) => SocketLike;

export interface LiveClientOptions {
  /** One edge (`https://cams.example`, `wss://…/ws`) or several, tried in turn. */
  urls: string | string[];
  /** A fixed token, for a session shorter than its life. */
  token?: string;
  /**
   * Asked before every connection attempt (`connect`) and when the edge says
   * the token is about to expire (`expiring`): a token other than the one
   * presented is then sent in-band and the connection goes on. Wins over `token`.
   */
  getToken?: (why: 'connect' | 'expiring') => string | Promise<string>;
  /** Defaults to `globalThis.WebSocket`; in Node pass `ws`'s. The token goes in the subprotocol. */
  WebSocket?: SocketConstructor;
  /** Instead of `WebSocket`: opens each attempt itself (Node: headers, handshake timeout, refusal status). */
  socketFactory?: SocketFactory;
  /** Send a fresh token in-band on `auth_expiring` (default true, when `getToken` is given). */
  refreshInBand?: boolean;
  backoff?: Partial<BackoffOptions>;
  /**
   * A connection on which nothing arrived this long is dead even when TCP has
   * not noticed (a frozen edge). Off by default: browsers cannot see pings, so
   * only set it with a status subscription that speaks every second or so.
   */
  idleTimeoutMs?: number;
  /** Where a throwing listener is reported (default console.error). */
  onListenerError?: (err: unknown) => void;
}

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface ConnectionChange {
  state: ConnectionState;
  /** The edge connected to, or tried next. */
  url: string;
  /** Failed attempts since the edge last delivered something. */
  attempt: number;
  /** With `reconnecting`: the wait before the next attempt. */
  delayMs?: number;
  /** With `reconnecting` and `closed`: why the last connection ended (1006: lost, or no WebSocket at all). */
  code?: number;
  reason?: string;
  /** With `closed`: the HTTP status that refused the upgrade, where it could be seen. */
  status?: number;
}

/** A `codec` reply: re-initialise the decoder when generation, epoch or quality differs. */
export interface StreamCodec extends CodecReply {
  /** The quality this codec belongs to (`main` from an edge that predates qualities). */
  quality: Quality;
}

export interface VideoPacket {
  header: PacketHeader;
  /** The codec bytes (Annex-B for H.264/H.265), a view into the received frame. */
  data: Uint8Array;
  /** Size of the frame on the wire, header included. */
  wireBytes: number;
  /** ms since the epoch, when it arrived. */
  receivedAt: number;
}

export interface StreamAck {
  monitorId: number;
  /** The quality served: `main` when `sub` was asked of a monitor without a second stream. */
  quality: Quality;
  keyframesOnly: boolean;
  fallback: boolean;
}

export interface EventsGap {
  monitorId: number;
  code: typeof ErrorCode.EventsExpired | typeof ErrorCode.HistoryLost;
  message: string;
}

export interface StreamOptions {
  /** `auto` (default): whatever the camera sends. */
  codec?: string;
  quality?: Quality;
  /** Only keyframes: for very large grids, a picture every GOP at a fraction of the bandwidth. */
  keyframesOnly?: boolean;
}

export interface PictureOptions {
  /** Pictures per second at most (default 1; the edge allows 0.0167 to 10). */
  fps?: number;
  /** Scaled to this width (1 to 8192); with `height` alone or neither, the camera's aspect. */
  width?: number;
  height?: number;
  /** JPEG quality, 1 to 100 (edge default 80). */
  quality?: number;
}

/** One JPEG of an MJPEG picture subscription: the edge's metadata frame and the bytes that followed it. */
export interface LivePicture {
  monitorId: number;
  /** `width`, `height`, `generation`, `sequence`, `capture_time` (ms since the epoch) of the frame shown. */
  meta: PayloadMeta;
  /** The JPEG, a view into the received frame. */
  data: Uint8Array<ArrayBuffer>;
  /** Size of the binary frame on the wire, header included. */
  wireBytes: number;
  /** ms since the epoch, when it arrived. */
  receivedAt: number;
}

export interface LiveClientEvents {
  state: [ConnectionChange];
  codec: [StreamCodec];
  packet: [VideoPacket];
  /** A picture of a `subscribePictures` subscription. */
  picture: [LivePicture];
  status: [StatusReply];
  /** Each event once, in order, across reconnects. */
  event: [EventReply];
  eventsGap: [EventsGap];
  /** Video the edge skipped for this client (the next packet is a keyframe). */
  dropped: [DroppedReply];
  streamAck: [StreamAck];
  ack: [AckReply];
  /** An `error` reply: about one command or monitor; the connection goes on. */
  error: [ErrorReply];
  /** Credentials accepted in-band (a refresh): when they now expire. */
  auth: [AuthReply];
}

const OPEN = 1;

export class LiveClient extends TypedEmitter<LiveClientEvents> {
  private readonly urls: string[];
  private readonly backoff: BackoffOptions;
  private readonly open: SocketFactory;
  /** Keyed by topic and monitor: subscribing again replaces, as on the edge. */
  private readonly subscriptions = new Map<string, Record<string, unknown>>();
  private readonly resume = new EventResume();
  /** Per monitor, the picture metadata frame waiting for its bytes (the edge writes the two together). */
  private readonly pictureMeta = new Map<number, PayloadMeta>();
  private socket: SocketLike | null = null;
  private socketUrl = '';
  private nextUrl = 0;
  private attempt = 0;
  private connections = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private idleTimer: ReturnType<typeof setTimeout> | null = null;
  private current: ConnectionState = 'connecting';
  /** The token this connection presented last: the same one again refreshes nothing. */
  private presented: string | undefined;
  private closed = false;

  constructor(private readonly opts: LiveClientOptions) {
    super(opts.onListenerError);
    this.urls = typeof opts.urls === 'string' ? [opts.urls] : [...opts.urls];
    if (this.urls.length === 0) throw new Error('no edge URL given');
    for (const url of this.urls) checkEdgeUrl(url);
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
    const Socket = opts.WebSocket ?? (globalThis as { WebSocket?: SocketConstructor }).WebSocket;
    if (!opts.socketFactory && !Socket) throw new Error('no WebSocket here: pass one (in Node, `ws`)');
    this.open = opts.socketFactory ?? ((url, token) => new Socket!(url, token ? ['zmcast', `zmcast.token.${token}`] : ['zmcast']));
    // Listeners attached right after construction hear everything: the first attempt starts on the next tick.
    this.retryTimer = setTimeout(() => this.attemptNow(), 0);
  }

  get state(): ConnectionState {
    return this.current;
  }

  /** The edge connected now, or null between connections. */
  get url(): string | null {
    return this.current === 'open' ? this.socketUrl : null;
  }

  /** Connections re-established after one was lost. */
  get reconnects(): number {
    return Math.max(0, this.connections - 1);
  }

  subscribeStream(monitorId: number, opts: StreamOptions = {}): void {
    this.subscribe({
      command: 'subscribe', topic: 'stream', monitor_id: monitorId, codec: opts.codec ?? 'auto',
      quality: opts.quality ?? 'main', keyframes_only: opts.keyframesOnly ?? false,
    });
  }

  /**
   * JPEG pictures of the monitor (MJPEG, made by the picture workers from any
   * codec), as `picture` events. It is the monitor's stream subscription: it
   * replaces a `subscribeStream` of the same monitor and is replaced by one;
   * `unsubscribe(id, 'stream')` ends either.
   */
  subscribePictures(monitorId: number, opts: PictureOptions = {}): void {
    this.subscribe({
      command: 'subscribe', topic: 'stream', monitor_id: monitorId, codec: 'mjpeg', max_fps: opts.fps ?? 1,
      ...(opts.width === undefined ? {} : { width: Math.round(opts.width) }),
      ...(opts.height === undefined ? {} : { height: Math.round(opts.height) }),
      ...(opts.quality === undefined ? {} : { quality: opts.quality }),
    });
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
    if (!this.subscriptions.delete(key(topic, monitorId))) return;
    this.send({ command: 'unsubscribe', topic, monitor_id: monitorId });
  }

  isSubscribed(monitorId: number, topic: Topic): boolean {
    return this.subscriptions.has(key(topic, monitorId));
  }

  /** Ends the connection for good; resolves once the socket has closed. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    const socket = this.socket;
    this.finish(CloseCode.Normal, 'closed by client');
    if (!socket) return Promise.resolve();
    return new Promise((resolve) => {
      socket.onclose = () => resolve();
      socket.close(CloseCode.Normal, 'closed by client');
    });
  }

  private subscribe(command: Record<string, unknown>): void {
    this.subscriptions.set(key(command.topic as Topic, command.monitor_id as number), command);
    this.send(this.withResume(command));
  }

  private send(command: Record<string, unknown>): void {
    if (this.socket?.readyState === OPEN) this.socket.send(JSON.stringify(command));
  }

  private withResume(command: Record<string, unknown>): Record<string, unknown> {
    return command.topic === 'events' ? { ...command, ...this.resume.resumePoint(command.monitor_id as number) } : command;
  }

  private setState(change: ConnectionChange): void {
    this.current = change.state;
    this.emit('state', change);
  }

  private attemptNow(): void {
    this.connect().catch((err: unknown) => this.retry(1006, `no token for this attempt: ${(err as Error).message}`));
  }

  private async connect(): Promise<void> {
    this.retryTimer = null;
    if (this.closed) return;
    const url = this.urls[this.nextUrl];
    // The next attempt goes to the next edge, whatever happens to this one: a dead edge costs one attempt.
    this.nextUrl = (this.nextUrl + 1) % this.urls.length;
    const token = this.opts.getToken ? await this.opts.getToken('connect') : this.opts.token;
    if (this.closed) return;
    this.presented = token || undefined;
    const socket = this.open(toWsUrl(url), this.presented);
    socket.binaryType = 'arraybuffer';
    this.socket = socket;
    this.socketUrl = url;
    this.pictureMeta.clear();
    let opened = false;
    socket.onopen = () => {
      opened = true;
      this.armIdle(socket);
      for (const command of this.subscriptions.values()) socket.send(JSON.stringify(this.withResume(command)));
      this.connections++;
      this.setState({ state: 'open', url, attempt: this.attempt });
    };
    socket.onmessage = (ev) => {
      this.armIdle(socket);
      this.onMessage(ev.data);
    };
    socket.onerror = () => {}; // reported by onclose
    socket.onping = () => this.armIdle(socket);
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.disarmIdle();
      if (this.closed) return;
      // A browser reports a refused upgrade as 1006 like a lost connection: it is retried, with the backoff.
      if (ev.status !== undefined && !retryStatus(ev.status)) return this.finish(ev.code, ev.reason, ev.status);
      if (ev.status === undefined && !RETRY_CLOSE.has(ev.code)) return this.finish(ev.code, ev.reason);
      this.retry(opened ? ev.code : 1006, ev.reason, ev.code === CloseCode.RateLimited || ev.status === 429);
    };
  }

  private onMessage(data: unknown): void {
    if (typeof data !== 'string') {
      const bytes = new Uint8Array(data as ArrayBuffer);
      const header = decodeHeader(bytes);
      this.attempt = 0;
      if (header.kind === PacketKind.Picture) return this.onPicture(header.monitorId, bytes);
      this.emit('packet', { header, data: bytes.subarray(HEADER_BYTES), wireBytes: bytes.length, receivedAt: Date.now() });
      return;
    }
    const msg = JSON.parse(data) as Record<string, unknown>;
    // `hello` comes from any edge that accepts sockets; anything else shows this one serves us.
    if (msg.type !== 'hello') this.attempt = 0;
    switch (msg.type) {
      case 'codec': {
        const c = msg as unknown as CodecReply;
        this.emit('codec', { ...c, quality: c.quality ?? 'main' });
        break;
      }
      case 'status': this.emit('status', msg as unknown as StatusReply); break;
      case 'stream': {
        const m = msg as unknown as PayloadMeta;
        this.pictureMeta.set(m.monitor_id, m);
        break;
      }
      case 'dropped': this.emit('dropped', msg as unknown as DroppedReply); break;
      case 'auth': this.emit('auth', msg as unknown as AuthReply); break;
      case 'auth_expiring': this.refreshToken(msg as unknown as AuthExpiringReply); break;
      case 'event': {
        const e = msg as unknown as EventReply;
        // An edge whose Redis has no epoch yet sends none: ids alone order events.
        if (this.resume.accept(e.monitor_id, e.id, e.epoch || undefined)) this.emit('event', e);
        break;
      }
      case 'ack': {
        const a = msg as unknown as AckReply;
        this.emit('ack', a);
        // A video stream's ack has interval 0; an MJPEG one its picture interval.
        if (a.topic === 'stream' && !a.interval_ms) {
          this.emit('streamAck', { monitorId: a.monitor_id, quality: a.quality ?? 'main', keyframesOnly: a.keyframes_only === true, fallback: a.fallback === true });
        }
        break;
      }
      case 'error': {
        const e = msg as unknown as ErrorReply;
        this.emit('error', e);
        if ((e.code === ErrorCode.EventsExpired || e.code === ErrorCode.HistoryLost) && e.monitor_id !== undefined) {
          this.emit('eventsGap', { monitorId: e.monitor_id, code: e.code, message: e.message });
        }
        // A subscription the edge ended (permission removed) is not re-sent on the next connection.
        if (e.code === ErrorCode.Forbidden && e.monitor_id !== undefined && e.request_id === undefined) {
          for (const topic of ['stream', 'status', 'events'] as const) this.subscriptions.delete(key(topic, e.monitor_id));
        }
        break;
      }
    }
  }

  private onPicture(monitorId: number, bytes: Uint8Array<ArrayBuffer>): void {
    const meta = this.pictureMeta.get(monitorId);
    this.pictureMeta.delete(monitorId);
    if (!meta) return; // its metadata was lost with an earlier connection: the next picture comes whole
    this.emit('picture', { monitorId, meta, data: bytes.subarray(HEADER_BYTES), wireBytes: bytes.length, receivedAt: Date.now() });
  }

  /** In-band refresh: the connection and its subscriptions go on with the fresh token. */
  private refreshToken(warning: AuthExpiringReply): void {
    const getToken = this.opts.getToken;
    if (!getToken || this.opts.refreshInBand === false) return; // the edge closes with 4401 at expires_at: the caller signs in again
    const socket = this.socket;
    Promise.resolve()
      .then(() => getToken('expiring'))
      .then((token) => {
        if (this.socket !== socket || token === this.presented) return;
        this.presented = token;
        this.send({ command: 'auth', token, request_id: `refresh-${warning.expires_at}` });
      })
      .catch((err: unknown) => {
        this.emit('error', { type: 'error', code: ErrorCode.AuthFailed, message: `no fresh token: ${(err as Error).message}` });
      });
  }

  private armIdle(socket: SocketLike): void {
    const ms = this.opts.idleTimeoutMs;
    if (!ms) return;
    this.disarmIdle();
    this.idleTimer = setTimeout(() => {
      if (this.socket !== socket) return;
      // Given up here, not by the socket: a frozen edge may never complete a close handshake.
      this.socket = null;
      socket.onclose = null;
      socket.close();
      this.retry(1006, `nothing received for ${ms} ms`);
    }, ms);
  }

  private disarmIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  private retry(code: number, reason: string, rateLimited = false): void {
    if (this.closed) return;
    this.attempt++;
    const delayMs = backoffDelay(this.attempt, this.backoff, rateLimited);
    this.retryTimer = setTimeout(() => this.attemptNow(), delayMs);
    this.setState({ state: 'reconnecting', url: this.urls[this.nextUrl], attempt: this.attempt, delayMs, code, reason });
  }

  private finish(code: number, reason: string, status?: number): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.disarmIdle();
    this.socket = null;
    this.setState({ state: 'closed', url: this.socketUrl, attempt: this.attempt, code, reason, ...(status === undefined ? {} : { status }) });
  }
}

const key = (topic: Topic, monitorId: number) => `${topic}:${monitorId}`;
