/**
 * Follows video streams by being pushed their entries. Capture's publish
 * script publishes every entry it adds on the stream's shard channel
 * (`pushChannel`); this reader, subscribed on a connection of its own, hands
 * each one to the stream's follower as it arrives and sends Redis nothing
 * per packet. The XREAD loop (stream-reader.ts) asks for every packet: one
 * command written and one reply awaited per wake-up, about a twentieth of
 * the edge's CPU at 100 viewers of one monitor (docs/performance.md).
 *
 * Pub/sub forgets what it could not deliver, so the stream stays the record.
 * After every subscribe (the first, or after the connection dropped: Redis
 * restarted, or cut an edge too slow to drain its pub/sub output buffer) the
 * stream is read from the last id this edge handed on; entries pushed
 * meanwhile are held and handed on after it, past what the read delivered.
 * Nothing is lost or repeated inside the retention window, and a lost
 * connection is logged and counted like the XREAD loop's. A stream pushed
 * nothing for 2 s is read once too: what a capture older than this edge
 * writes without pushing still reaches viewers (late), and the edge says so
 * in its log and in zmcast_edge_unpushed_entries_total.
 *
 * Used on a single Redis; on a Cluster each monitor keeps its XREAD loop.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { pushChannel } from '../../shared/redis-keys.js';
import { edgeMetrics } from '../../shared/metrics.js';
import { logger } from '../../shared/log.js';
import { readConnectionLike, type ReadConnection } from './read-connection.js';
import { RespError } from './resp.js';
import { payloadFrom } from './packet-memory.js';
import { compareIds, type StreamEntry, type StreamFeed, type StreamFollower } from './stream-reader.js';

/** Entries per read while catching up. */
const PAGE = 500;
/** A connection with nothing pushed for this long is pinged, so a stuck Redis shows. */
const PING_EVERY_MS = 1000;
const OVERDUE_GRACE_MS = 1500;
const RETRY_MAX_MS = 500;
/** A stream pushed nothing this long is read once: entries there were never pushed (an older capture's script). */
const QUIET_CHECK_MS = 2000;
/** A subscription Redis refused (an ACL without the channel) is asked for again this often. */
const REFUSED_RETRY_MS = 2000;
/** Pushed entries held per stream during a catch-up; past this they are dropped and read from the stream instead. */
const HOLD_MAX = 1000;
const log = logger('push-reader');

interface Followed extends StreamFollower {
  key: string;
  /** The id of the last entry handed on. */
  lastId: string;
  /** Entries pushed while the stream is read; null once caught up. */
  held: StreamEntry[] | null;
  /** Held entries were dropped: the stream is read again before the rest are handed on. */
  overflowed: boolean;
  /** Past the first pushed entry newer than the catch-up: pub/sub keeps stream order from there on. */
  inStep: boolean;
  /** Bumped at every (re)subscribe: a catch-up of an older round stops. */
  round: number;
  /** When it was last pushed an entry (or last checked while quiet). */
  pushedAt: number;
  /** The newest entry a quiet check found in the stream, not yet pushed: handed on at the next check if still not. */
  unpushedUpTo: string | null;
  /** Entries were found that were never pushed: said once. */
  unpushed: boolean;
  /** Redis refused the subscription (its error), until it allows it. */
  refused: string | null;
}

export class PushReader implements StreamFeed {
  /** By push channel. */
  private readonly followed = new Map<string, Followed>();
  private readonly conn: ReadConnection;
  private readonly db: number;
  private lostAt: number | null = null;
  private lastHeard = Date.now();
  private pinging = false;
  private stopped = false;
  private readonly ticker: NodeJS.Timeout;
  private readonly m = edgeMetrics();

  /** Subscribes through its own connection, named `name`; `control` (a shared connection) reads the streams. */
  constructor(private readonly control: Redis, name: string) {
    this.db = control.options.db ?? 0;
    this.conn = readConnectionLike(control, name);
    this.conn.on('message', (channel: Buffer, message: Buffer) => this.onMessage(channel, message));
    this.conn.on('ready', () => this.onReady());
    this.conn.on('close', () => this.onClose());
    this.ticker = setInterval(() => this.tick(), PING_EVERY_MS).unref();
  }

  get size(): number {
    return this.followed.size;
  }

  /** Healthy: following nothing, or connected, subscribed, caught up and heard from Redis within the ping interval plus a grace. */
  get healthy(): boolean {
    if (this.followed.size === 0) return true;
    if (this.lostAt !== null || Date.now() - this.lastHeard >= PING_EVERY_MS + OVERDUE_GRACE_MS) return false;
    for (const f of this.followed.values()) if (f.refused !== null) return false;
    return true;
  }

  add(key: string, fromId: string, follower: StreamFollower): void {
    if (this.followed.size === 0) this.lastHeard = Date.now();
    const channel = pushChannel(key, this.db);
    const f: Followed = { ...follower, key, lastId: fromId, held: [], overflowed: false, inStep: false, round: 0, pushedAt: Date.now(), unpushedUpTo: null, unpushed: false, refused: null };
    this.followed.set(channel, f);
    // oxlint-disable-next-line typescript/no-floating-promises -- follow() retries and logs its own failures
    if (this.conn.isReady) void this.follow(channel, f, false);
  }

  remove(key: string): void {
    const channel = pushChannel(key, this.db);
    if (!this.followed.delete(channel) || !this.conn.isReady) return;
    // A connection that drops meanwhile forgets the subscription anyway.
    this.conn.call(['SUNSUBSCRIBE', channel]).catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.ticker);
    this.followed.clear();
    this.conn.disconnect();
  }

  private onMessage(channel: Buffer, message: Buffer): void {
    const now = (this.lastHeard = Date.now());
    const f = this.followed.get(channel.toString('latin1'));
    if (!f) return; // unsubscribed, the message was already on its way
    f.pushedAt = now;
    let entry: StreamEntry;
    try {
      entry = decodePushedEntry(message);
    } catch (err) {
      log.warn('skipping a malformed pushed entry', { stream: f.key, error: (err as Error).message });
      return;
    }
    if (f.held) return this.hold(f, entry);
    const id = entry[0].toString('latin1');
    if (!f.inStep) {
      if (compareIds(id, f.lastId) <= 0) return; // the catch-up read already handed it on
      f.inStep = true;
    }
    f.lastId = id;
    this.hand(f, [entry]);
  }

  private hold(f: Followed, entry: StreamEntry): void {
    if (f.held!.length >= HOLD_MAX) {
      f.held = [];
      f.overflowed = true;
    }
    f.held!.push(entry);
  }

  /** Subscribes, then reads the stream from lastId on (after a loss, once the follower has checked its history). */
  private async follow(channel: string, f: Followed, resuming: boolean): Promise<void> {
    const round = ++f.round;
    f.held = [];
    f.overflowed = false;
    f.inStep = false;
    const current = () => !this.stopped && this.followed.get(channel) === f && f.round === round;
    for (;;) {
      try {
        await this.conn.call(['SSUBSCRIBE', channel]);
        break;
      } catch (err) {
        if (!(err instanceof RespError)) return; // the connection dropped: once it is back, everything is followed again
        if (f.refused === null) {
          log.error('Redis refuses the subscription to pushed video: this stream\'s viewers get nothing until it is allowed (an ACL user needs the channels &zmcast:*)', { stream: f.key, error: err.message });
        }
        f.refused = err.message;
        await sleep(REFUSED_RETRY_MS);
        if (!current()) return;
      }
    }
    if (f.refused !== null) log.info('Redis allows the subscription to pushed video again', { stream: f.key });
    f.refused = null;
    for (let attempt = 0; current(); attempt++) {
      try {
        if (resuming && f.resume) {
          const from = await f.resume(f.lastId);
          if (!current()) return;
          f.lastId = from;
          resuming = false;
        }
        await this.catchUp(f, current);
        return;
      } catch (err) {
        if (attempt === 0) log.warn('cannot read a stream to catch up; retrying', { stream: f.key, error: (err as Error).message });
        await sleep(Math.min(RETRY_MAX_MS, 25 * 2 ** attempt));
      }
    }
  }

  private async catchUp(f: Followed, current: () => boolean): Promise<void> {
    for (;;) {
      const page = await this.readAfterLast(f);
      if (!current()) return;
      if (page.length > 0) {
        f.lastId = page[page.length - 1][0].toString();
        this.hand(f, page);
      }
      if (page.length === PAGE) continue;
      if (!f.overflowed) break;
      f.overflowed = false; // what was dropped is in the stream: read on to where the held entries start
    }
    const fresh = after(f.held!, f.lastId);
    f.held = null;
    if (fresh.length > 0) {
      f.lastId = fresh[fresh.length - 1][0].toString();
      f.inStep = true;
      this.hand(f, fresh);
    }
    if (this.lostAt !== null && [...this.followed.values()].every((o) => o.held === null)) this.recovered();
  }

  /** Up to a page of the stream's entries after the last one handed on. */
  private async readAfterLast(f: Followed): Promise<StreamEntry[]> {
    return (await this.control.xrangeBuffer(f.key, `(${f.lastId}`, '+', 'COUNT', PAGE)) as StreamEntry[];
  }

  private hand(f: Followed, entries: StreamEntry[]): void {
    try {
      f.onEntries(entries);
    } catch (err) {
      log.error('stream handler failed', { stream: f.key, error: (err as Error).stack });
    }
  }

  private onReady(): void {
    this.lastHeard = Date.now();
    if (this.followed.size === 0 && this.lostAt !== null) this.recovered();
    const resuming = this.lostAt !== null;
    // oxlint-disable-next-line typescript/no-floating-promises -- follow() retries and logs its own failures
    for (const [channel, f] of this.followed) void this.follow(channel, f, resuming);
  }

  private onClose(): void {
    if (this.stopped) return;
    for (const f of this.followed.values()) f.round++; // catch-ups in flight stop; 'ready' starts new ones
    if (this.followed.size === 0 || this.lostAt !== null) return;
    this.lostAt = Date.now();
    this.m.readerReconnects.inc();
    log.warn('pushed entries stopped (connection to Redis lost); subscribing again and reading on from the streams', { streams: this.followed.size });
  }

  private recovered(): void {
    log.info('pushed entries flow again', { down_ms: Date.now() - this.lostAt!, streams: this.followed.size });
    this.lostAt = null;
  }

  /**
   * Reads what reached a quiet stream without being pushed. An entry found
   * may still have its push on the way, so it is handed on only if the next
   * check (a quiet period later) finds it still not pushed. Pushes may arrive
   * meanwhile: only entries past lastId are handed on, and the next push is
   * checked against it again.
   */
  private async readQuiet(f: Followed): Promise<void> {
    const page = await this.readAfterLast(f);
    if (this.followed.get(pushChannel(f.key, this.db)) !== f || f.held !== null) return;
    const fresh = after(page, f.lastId);
    const upTo = f.unpushedUpTo;
    f.unpushedUpTo = fresh.length > 0 ? fresh[fresh.length - 1][0].toString() : null;
    const overdue = upTo === null ? [] : fresh.filter((e) => compareIds(e[0].toString(), upTo) <= 0);
    if (overdue.length === 0) return;
    f.lastId = overdue[overdue.length - 1][0].toString();
    f.inStep = false;
    this.m.unpushedEntries.inc(overdue.length);
    if (!f.unpushed) {
      f.unpushed = true;
      log.warn('entries reach this stream without being pushed; reading them late from the stream instead (is its capture older than this edge?)', { stream: f.key });
    }
    this.hand(f, overdue);
  }

  private tick(): void {
    if (!this.conn.isReady) return; // the loss is being handled: every stream is read on once it is back
    const now = Date.now();
    for (const f of this.followed.values()) {
      if (f.held !== null || now - f.pushedAt < QUIET_CHECK_MS) continue;
      f.pushedAt = now;
      // A failed read is tried again after the next quiet period; a Redis that is away shows in the ping.
      this.readQuiet(f).catch(() => undefined);
    }
    this.ping();
  }

  private ping(): void {
    if (this.pinging || !this.conn.isReady || this.followed.size === 0 || Date.now() - this.lastHeard < PING_EVERY_MS) return;
    this.pinging = true;
    this.conn.call(['PING']).then(
      () => (this.lastHeard = Date.now()),
      () => undefined, // a dropped connection shows as a loss
    ).finally(() => (this.pinging = false));
  }
}

/** The entries (in id order) past `id`. */
function after(entries: StreamEntry[], id: string): StreamEntry[] {
  return entries.filter((e) => compareIds(e[0].toString(), id) > 0);
}

/**
 * A pushed entry, as publish-4.lua writes it: the id, then the fields, each
 * "<length>:<bytes>". Everything is copied out but the last field (the
 * packet), which stays where it was read so its frame is built in place.
 */
export function decodePushedEntry(message: Buffer): StreamEntry {
  const parts: Buffer[] = [];
  let pos = 0;
  while (pos < message.length) {
    let len = 0;
    let i = pos;
    for (; i < message.length && message[i] !== 0x3a; i++) {
      const d = message[i] - 0x30;
      if (d < 0 || d > 9) throw new Error('bad length');
      len = len * 10 + d;
    }
    const start = i + 1;
    const end = start + len;
    if (i === pos || end > message.length) throw new Error('truncated');
    parts.push(end === message.length ? payloadFrom(message, start) : Buffer.from(message.subarray(start, end)));
    pos = end;
  }
  if (parts.length < 3 || parts.length % 2 === 0) throw new Error('not an id and field pairs');
  return [parts[0], parts.slice(1)];
}
