/**
 * One WebSocket connection: parses commands, checks them, keeps the
 * connection's subscriptions and turns every failure into a JSON error with
 * a stable code, never into trouble for anyone else. Everything it writes
 * goes through the connection's send budget (send-budget.ts).
 */
import type { Socket } from 'node:net';
import type { WebSocket, RawData } from 'ws';
import {
  CloseCode, ErrorCode, ProtocolError, ZmMessage, errorReply, parseMessage, toCommand,
  type AckReply, type Command, type PictureRequest, type Quality, type Reply, type RequestId, type Topic,
} from '../../shared/protocol.js';
import { parsePictureSpec, type PictureSpec } from '../../shared/pictures/picture-spec.js';
import { isAuthMessage } from '../../shared/auth/index.js';
import { configToJson } from '../../shared/codec.js';
import { edgeMetrics } from '../../shared/metrics.js';
import { logger } from '../../shared/log.js';
import type { Hub } from './hub.js';
import { VideoSubscription, type Outlet, type WireFormat } from './video-subscription.js';
import type { EventsSubscriber, MonitorEvent } from './events-channel.js';
import type { Frame } from './frame.js';
import { SendBudget, type SendLimits } from './send-budget.js';
import { SocketWriter, type CoalesceLimits } from './socket-writer.js';
import { flushFanoutBefore } from './fanout-batch.js';
import { latestKeyframe } from './one-shot.js';
import { SessionAuth } from './session-auth.js';
import type { PictureHub } from './picture-channel.js';
import { PictureSubscription } from './picture-subscription.js';
import { CachedPicture, type PictureKind } from './cached-picture.js';
import { pictureProtocolError } from './picture-errors.js';

export interface SessionLimits extends SendLimits, CoalesceLimits {
  maxSubscriptions: number;
  commandsPerSecond: number;
}

interface Subscription {
  monitorId: number;
  close(): void;
}

/** Past this many refused commands in one second the client is flooding, not bursting. */
const FLOOD_FACTOR = 5;
const CLOSE_GRACE_MS = 10_000;
const log = logger('session');

export class ClientSession implements Outlet {
  private readonly subs = new Map<string, Subscription>();
  private tokens: number;
  private lastRefill = Date.now();
  private refusedWindowStart = 0;
  private refusedThisSecond = 0;
  /** Set right after construction by the edge (it needs this session's hooks). */
  auth!: SessionAuth;
  private closed = false;
  private queue: Promise<void> = Promise.resolve();
  /** Commands queued or running: bounded, since one-shot pictures may each take up to their 3 s deadline. */
  private waiting = 0;
  private readonly m = edgeMetrics();
  readonly budget: SendBudget;
  private readonly writer: SocketWriter;

  constructor(
    private readonly ws: WebSocket,
    private readonly socket: Socket,
    private readonly hub: Hub,
    private readonly pictures: PictureHub,
    readonly format: WireFormat,
    private readonly limits: SessionLimits,
    /** Set on `/monitors/:id/ws`: the monitor every command is about. */
    private readonly fixedMonitor?: number,
  ) {
    this.tokens = limits.commandsPerSecond * 2;
    this.writer = new SocketWriter(socket, limits);
    this.budget = new SendBudget(socket, limits, () => this.close(CloseCode.SlowConsumer, 'slow consumer', 'slow_consumer'), () => this.writer.pendingBytes);
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('close', () => this.dispose());
    ws.on('error', (err) => log.debug('socket error', { error: err.message }));
  }

  /** A message the client must get (a reply, an event, a notice): written unless the budget is exceeded. */
  sendJson(message: Reply | object): void {
    if (!this.closed && this.budget.check() !== 'closed') this.sendText(JSON.stringify(message));
  }

  /** A message the next one replaces (a status push): skipped while the client is behind. */
  private sendLatest(message: Reply | object): void {
    if (!this.closed && this.budget.check() === 'ok') this.sendText(JSON.stringify(message));
  }

  /** Held video goes first, so a reply or notice never overtakes the frames before it. */
  private sendText(text: string): void {
    this.writer.flush();
    flushFanoutBefore(this.socket);
    this.ws.send(text);
  }

  /** Pre-built frames the client must get (one-shot payloads, events). */
  sendFrames(frames: readonly Frame[]): void {
    if (!this.closed && this.budget.check() !== 'closed') this.writeFrames(frames);
  }

  writeFrames(frames: readonly Frame[]): void {
    this.writer.write(frames);
  }

  directSocket(): Socket | null {
    return !this.closed && this.writer.direct ? this.socket : null;
  }

  /** True once the client has taken what it was sent; false if it is closed first. */
  async writable(): Promise<boolean> {
    return !this.closed && (await this.budget.writable()) && !this.closed;
  }

  close(code: number, reason: string, metricReason: string): void {
    if (this.closed) return;
    this.m.droppedClients.inc({ reason: metricReason });
    this.dispose();
    flushFanoutBefore(this.socket); // a frame already taken for this socket goes before the close frame
    this.ws.close(code, reason);
    // The close frame waits behind what is already queued; a client that has
    // not read that far after the grace period loses the TCP connection.
    setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  /** Drops what the principal may no longer see; on a per-monitor socket that is the whole connection. */
  recheckPermissions(): void {
    if (this.closed || !this.auth.principal) return;
    if (this.fixedMonitor !== undefined && !this.auth.canView(this.fixedMonitor)) {
      this.close(CloseCode.AuthRevoked, 'Forbidden', 'forbidden');
      return;
    }
    for (const [key, sub] of this.subs) {
      if (this.auth.canView(sub.monitorId)) continue;
      sub.close();
      this.subs.delete(key);
      this.fail(new ProtocolError(ErrorCode.Forbidden, `Not permitted to view monitor ${sub.monitorId}`, undefined, sub.monitorId));
    }
  }

  private dispose(): void {
    if (this.closed) return;
    this.closed = true;
    this.writer.discard();
    this.auth?.dispose();
    for (const s of this.subs.values()) s.close();
    this.subs.clear();
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.closed) return;
    if (!this.takeToken(isBinary ? undefined : data)) return;
    if (this.waiting >= this.limits.commandsPerSecond * 2) {
      this.m.refused.inc({ reason: 'commands_waiting' });
      this.fail(new ProtocolError(ErrorCode.RateLimited, `More than ${this.limits.commandsPerSecond * 2} commands waiting for an answer`, requestIdOf(isBinary ? undefined : data)));
      return;
    }
    this.waiting++;
    // Commands run one after another so replies come back in the order asked.
    this.queue = this.queue.then(() => this.handle(data, isBinary)).catch((err) => this.fail(err)).finally(() => this.waiting--);
  }

  private async handle(data: RawData, isBinary: boolean): Promise<void> {
    if (this.closed) return;
    if (isBinary) throw new ProtocolError(ErrorCode.BadRequest, 'Commands are JSON text frames');
    const msg = parseMessage(data.toString());
    if (isAuthMessage(msg)) {
      this.m.commands.inc({ command: 'auth' });
      const requestId = (msg as { request_id?: unknown }).request_id;
      await this.auth.login(msg, typeof requestId === 'string' || typeof requestId === 'number' ? requestId : undefined);
      return;
    }
    const cmd = toCommand(msg, this.fixedMonitor);
    // Until the in-band login the connection may do nothing; its deadline still runs.
    if (!this.auth.principal) throw new ProtocolError(ErrorCode.Unauthenticated, 'Send {"command":"auth",…} first', cmd.requestId);
    this.m.commands.inc({ command: cmd.command });
    if ('monitorId' in cmd) this.mayView(cmd.monitorId, cmd.requestId);
    await this.run(cmd);
  }

  /**
   * Throws `forbidden` unless the principal may watch the monitor. Checked when
   * a command arrives and again after every wait on Redis, right before
   * anything is given: a revalidation may have taken the right away meanwhile.
   * Not permitted and nonexistent look the same, so ids cannot be probed.
   */
  private mayView(monitorId: number, requestId?: RequestId): void {
    if (!this.auth.canView(monitorId)) {
      throw new ProtocolError(ErrorCode.Forbidden, `Not permitted to view monitor ${monitorId}`, requestId, monitorId);
    }
  }

  /** Token bucket: a burst of twice the rate, refilled continuously. */
  private takeToken(data?: RawData): boolean {
    const now = Date.now();
    const rate = this.limits.commandsPerSecond;
    this.tokens = Math.min(rate * 2, this.tokens + ((now - this.lastRefill) / 1000) * rate);
    this.lastRefill = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    this.m.refused.inc({ reason: 'rate_limited' });
    if (now - this.refusedWindowStart >= 1000) {
      this.refusedWindowStart = now;
      this.refusedThisSecond = 0;
    }
    if (++this.refusedThisSecond > rate * FLOOD_FACTOR) {
      this.close(CloseCode.RateLimited, 'command flood', 'rate_limited');
    } else {
      // Every command gets exactly one answer, so a client waiting on a request_id never hangs.
      this.fail(new ProtocolError(ErrorCode.RateLimited, `More than ${rate} commands per second`, requestIdOf(data)));
    }
    return false;
  }

  private async run(cmd: Command): Promise<void> {
    if (cmd.command === 'ping') {
      this.sendJson({ type: 'pong', request_id: cmd.requestId });
      return;
    }
    const { monitorId, requestId } = cmd;
    const exists = await this.hub.directory.exists(monitorId);
    this.mayView(monitorId, requestId);
    if (!exists) throw new ProtocolError(ErrorCode.UnknownMonitor, `Unknown monitor ${monitorId}`, requestId, monitorId);
    switch (cmd.command) {
      case 'status': {
        const status = await this.hub.directory.status(monitorId);
        this.mayView(monitorId, requestId);
        this.sendJson(withRequest(status, requestId));
        return;
      }
      case 'image':
        await this.image(monitorId, cmd.picture, 'image', requestId);
        return;
      case 'stream':
        if (cmd.codec === 'mjpeg') await this.image(monitorId, cmd.picture, 'stream', requestId);
        else await this.oneShot(monitorId, cmd.codec, requestId);
        return;
      case 'unsubscribe':
        this.subs.get(`${cmd.topic}:${monitorId}`)?.close();
        this.subs.delete(`${cmd.topic}:${monitorId}`);
        this.ack(cmd.command, cmd.topic, 0, monitorId, requestId);
        return;
      case 'subscribe':
        await this.subscribe(cmd);
    }
  }

  private async subscribe(cmd: Extract<Command, { command: 'subscribe' }>): Promise<void> {
    const { monitorId, requestId } = cmd;
    const key = `${cmd.topic}:${monitorId}`;
    if (!this.subs.has(key) && this.subs.size >= this.limits.maxSubscriptions) {
      throw new ProtocolError(ErrorCode.TooManySubscriptions, `At most ${this.limits.maxSubscriptions} subscriptions per connection`, requestId, monitorId);
    }
    if (cmd.topic === 'image' || (cmd.topic === 'stream' && cmd.codec === 'mjpeg')) {
      const kind: PictureKind = cmd.topic === 'image' ? 'image' : 'stream';
      const spec = this.pictureSpec(cmd.picture, kind, monitorId, requestId);
      this.subs.get(key)?.close();
      this.subs.delete(key);
      this.ack('subscribe', cmd.topic, cmd.intervalMs, monitorId, requestId);
      this.subs.set(key, this.pictureSubscription(monitorId, spec, cmd.intervalMs, kind, requestId));
      return;
    }
    // One stream subscription per monitor: another quality replaces it (old packets stop before the new codec reply).
    let quality: Quality = 'main';
    if (cmd.topic === 'stream') {
      quality = cmd.quality === 'sub' && (await this.hub.hasSubStream(monitorId)) ? 'sub' : 'main';
      await this.checkCodec(monitorId, cmd.codec, requestId, quality);
      this.mayView(monitorId, requestId);
    }
    this.subs.get(key)?.close();
    this.subs.delete(key);
    if (cmd.topic === 'status') {
      this.ack('subscribe', 'status', cmd.intervalMs, monitorId, requestId);
      this.subs.set(key, this.statusSubscription(monitorId, cmd.intervalMs));
    } else if (cmd.topic === 'events') {
      this.ack('subscribe', 'events', 0, monitorId, requestId);
      this.subs.set(key, this.eventsSubscription(monitorId, cmd.since, cmd.epoch));
    } else {
      const stream: Partial<AckReply> = { quality, keyframes_only: cmd.keyframesOnly };
      if (quality !== cmd.quality) stream.fallback = true;
      // The ZoneMinder draft's ack stays as the draft has it.
      this.ack('subscribe', 'stream', 0, monitorId, requestId, this.format === 'zmcast' ? stream : {});
      this.subs.set(key, this.videoSubscription(monitorId, requestId, quality, cmd.keyframesOnly));
    }
  }

  private statusSubscription(monitorId: number, intervalMs: number): Subscription {
    // One push at a time: while Redis is slow the directory answers stale within a bound, never in a pile.
    let pending = false;
    // An answer that arrives after the subscription ended (unsubscribed, right revoked) is dropped.
    let open = true;
    const push = () => {
      if (pending) return;
      pending = true;
      this.hub.directory.status(monitorId)
        .then((s) => { if (open) this.sendLatest(s); }, (err) => { if (open) this.fail(err); })
        .finally(() => (pending = false))
        .catch((err) => log.error('status push failed', { monitor: monitorId, error: (err as Error).stack }));
    };
    push();
    const timer = setInterval(push, intervalMs);
    return {
      monitorId,
      close: () => {
        open = false;
        clearInterval(timer);
      },
    };
  }

  private eventsSubscription(monitorId: number, since?: string, epoch?: string): Subscription {
    const use = this.hub.acquireEvents(monitorId);
    const sub: EventsSubscriber = {
      deliverEvent: (e: MonitorEvent) => this.sendFrames([e.frame]),
      writable: () => this.writable(),
      gap: (oldest) => this.fail(new ProtocolError(ErrorCode.EventsExpired,
        `Events before ${oldest} are no longer retained; some after since may be missing`, undefined, monitorId)),
      historyLost: (current) => this.fail(new ProtocolError(ErrorCode.HistoryLost,
        `Redis lost the history since names; what happened in between is unknown. Epoch now ${current ?? 'not started'}: every retained event follows`,
        undefined, monitorId)),
    };
    use.ready.then(() => use.channel.add(sub, since, epoch)).catch((err) => this.fail(err));
    return {
      monitorId,
      close: () => {
        use.channel.remove(sub);
        use.release();
      },
    };
  }

  private videoSubscription(monitorId: number, requestId: RequestId | undefined, quality: Quality, keyframesOnly: boolean): Subscription {
    const use = this.hub.acquireVideo(monitorId, quality);
    const sub = new VideoSubscription(this, monitorId, this.format === 'zoneminder' ? requestId : undefined, quality, keyframesOnly);
    this.writer.videoStreams++;
    use.channel.add(sub);
    use.ready.catch((err) => this.fail(err));
    return {
      monitorId,
      close: () => {
        this.writer.videoStreams--;
        use.channel.remove(sub);
        use.release();
      },
    };
  }

  /**
   * Pictures at `intervalMs`, from the edge's one channel for this monitor,
   * spec and rate: the workers decode once for every viewer of the cluster.
   */
  private pictureSubscription(monitorId: number, spec: PictureSpec, intervalMs: number, kind: PictureKind, requestId?: RequestId): Subscription {
    const use = this.pictures.acquire(monitorId, spec, fpsOf(intervalMs));
    const sub = new PictureSubscription(this, monitorId, kind, this.format === 'zoneminder' ? requestId : undefined);
    use.channel.add(sub);
    return {
      monitorId,
      close: () => {
        use.channel.remove(sub);
        use.release();
      },
    };
  }

  /** One picture now (`image`, or `stream` with codec mjpeg): answered or refused within the snapshot bound. */
  private async image(monitorId: number, request: PictureRequest, kind: PictureKind, requestId?: RequestId): Promise<void> {
    const spec = this.pictureSpec(request, kind, monitorId, requestId);
    let picture;
    try {
      picture = await this.pictures.snapshot(monitorId, spec);
    } catch (err) {
      throw pictureProtocolError(err, kind, monitorId, requestId);
    }
    this.mayView(monitorId, requestId);
    this.sendFrames(new CachedPicture(picture).frames(this.format, kind, requestId));
  }

  private pictureSpec(request: PictureRequest, kind: PictureKind, monitorId: number, requestId?: RequestId): PictureSpec {
    try {
      return parsePictureSpec(request);
    } catch (err) {
      throw pictureProtocolError(err, kind, monitorId, requestId);
    }
  }

  /** Passthrough only: the codec asked for must be the camera's. */
  private async checkCodec(monitorId: number, codec: string, requestId: RequestId | undefined, quality: Quality): Promise<void> {
    if (codec === 'auto') return;
    const config = await this.hub.currentConfig(monitorId, quality);
    if (config && config.codec !== codec) {
      throw new ProtocolError(ErrorCode.UnsupportedCodec, ZmMessage.StreamUnavailable, requestId, monitorId);
    }
  }

  /** `stream` without subscribing: the latest keyframe, decodable on its own. */
  private async oneShot(monitorId: number, codec: string, requestId?: RequestId): Promise<void> {
    const kf = await latestKeyframe(this.hub, monitorId);
    this.mayView(monitorId, requestId);
    if (!kf || (codec !== 'auto' && kf.config && kf.config.codec !== codec)) {
      throw new ProtocolError(ErrorCode.UnsupportedCodec, ZmMessage.StreamUnavailable, requestId, monitorId);
    }
    if (this.format === 'zoneminder') {
      this.sendFrames(kf.zoneminder(requestId));
      return;
    }
    if (kf.config) this.sendJson({ type: 'codec', monitor_id: monitorId, quality: 'main', ...configToJson(kf.config), request_id: requestId });
    this.sendFrames([kf.zmcast()]);
  }

  private ack(command: string, topic: Topic, intervalMs: number, monitorId: number, requestId?: RequestId, extra: Partial<AckReply> = {}): void {
    const ack: AckReply = { type: 'ack', command, topic, interval_ms: intervalMs, monitor_id: monitorId, ...extra };
    this.sendJson(withRequest(ack, requestId));
  }

  private fail(err: unknown): void {
    const e = err instanceof ProtocolError
      ? err
      : new ProtocolError(ErrorCode.Internal, 'Internal error');
    if (!(err instanceof ProtocolError)) log.error('command failed', { error: (err as Error)?.stack ?? String(err) });
    this.m.errors.inc({ code: e.code });
    this.sendJson(errorReply(e));
  }
}

/** The request_id of a refused command, when it is small enough to look at. */
function requestIdOf(data?: RawData): RequestId | undefined {
  if (!data || (data as Buffer).length > 4096) return undefined;
  try {
    const id = (JSON.parse(data.toString()) as { request_id?: unknown }).request_id;
    return typeof id === 'string' || typeof id === 'number' ? id : undefined;
  } catch {
    return undefined;
  }
}

/** Pictures per second of an interval, rounded so that near-equal intervals share one derived stream. */
function fpsOf(intervalMs: number): number {
  return Math.round(100_000 / intervalMs) / 100;
}

function withRequest<T extends object>(reply: T, requestId?: RequestId): T {
  return requestId === undefined ? reply : { ...reply, request_id: requestId };
}
