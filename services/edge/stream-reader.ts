/**
 * One blocking XREAD loop over many streams. The edge runs one of these for
 * all monitors that have local subscribers (one per monitor on Redis Cluster,
 * where a multi-key read must stay in one slot), so Redis sees one read per
 * batch of packets however many viewers there are.
 *
 * The loop is the one place that says what happens when Redis goes wrong:
 * a failed or overdue read is retried with a short capped backoff (a
 * restarted Redis is read again within a second), the loss and the recovery
 * are logged once each and counted, and after a reconnect every stream's
 * owner is asked to check that Redis still holds the history it was reading.
 */
import type { RedisClient } from '../../shared/redis.js';
import { openReadLink, type ReadLink, type XReadReply } from './read-connection.js';
import { edgeMetrics } from '../../shared/metrics.js';
import { logger } from '../../shared/log.js';

export type StreamEntry = [id: Buffer, fields: Buffer[]];
export type EntriesHandler = (entries: StreamEntry[]) => void;

export interface StreamFollower {
  onEntries: EntriesHandler;
  /**
   * The reader lost Redis and has it back. Resolves with the id to read on
   * from: the same id when the history is intact, '0-0' when Redis lost it.
   */
  resume?(lastId: string): Promise<string>;
}

/** What a channel needs of whatever feeds it a stream: this reader, or the push reader (push-reader.ts). */
export interface StreamFeed {
  /** Follows `key` from after `fromId` on ("0-0" for the whole stream). */
  add(key: string, fromId: string, follower: StreamFollower): void;
  remove(key: string): void;
  /** Redis answers in time (or there is nothing to follow). */
  readonly healthy: boolean;
  readonly size: number;
  stop(): Promise<void>;
}

interface Tracked extends StreamFollower {
  lastId: string;
  /** The id the read in flight asked to read after: while lastId is still it, every entry of the reply is new. */
  askedAfter?: string;
}

/** A blocked read that has not answered this long after its block time is overdue: Redis is stuck. */
const OVERDUE_GRACE_MS = 1500;
const RETRY_MAX_MS = 500;
/** How often an UNBLOCK is repeated until the blocked read returns (it may not have reached Redis yet). */
const UNBLOCK_RETRY_MS = 20;
const log = logger('stream-reader');

export class StreamReader implements StreamFeed {
  private readonly streams = new Map<string, Tracked>();
  private clientId: number | null = null;
  /** Bumped by every change of the key set; a read started with an older one must be cut short. */
  private version = 0;
  private blockedVersion: number | null = null;
  private unblockTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private wake: (() => void) | null = null;
  private loop: Promise<void> | null = null;
  private lostAt: number | null = null;
  private lastAnswer = Date.now();
  private readonly m = edgeMetrics();

  private readonly conn: ReadLink;

  /** Reads through its own connection, named `name`; `control` (a shared connection) sends the UNBLOCKs. */
  constructor(
    private readonly control: RedisClient,
    name: string,
    private readonly opts: { blockMs: number; count: number; unblock: boolean },
  ) {
    this.conn = openReadLink(control, name);
    // A read cut by a reconnect may be re-sent by the connection itself; the loss must still be noticed.
    this.conn.on('close', () => {
      if (!this.stopped && this.streams.size > 0) this.lost(new Error('connection closed'));
    });
  }

  get size(): number {
    return this.streams.size;
  }

  /** Healthy: Redis answered a read (or the loop had nothing to read) within the block time plus a grace. */
  get healthy(): boolean {
    return this.lostAt === null && (this.blockedVersion === null || Date.now() - this.lastAnswer < this.opts.blockMs + OVERDUE_GRACE_MS);
  }

  /** Reads `key` from after `fromId` on ("0-0" for the whole stream). */
  add(key: string, fromId: string, follower: StreamFollower): void {
    this.streams.set(key, { lastId: fromId, ...follower });
    this.loop ??= this.run();
    this.interrupt();
  }

  remove(key: string): void {
    if (this.streams.delete(key)) this.interrupt();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.interrupt();
    this.conn.disconnect();
    await this.loop;
    if (this.unblockTimer) clearInterval(this.unblockTimer);
  }

  /** A blocked XREAD only sees its key set at call time, so changes wake it. */
  private interrupt(): void {
    this.version++;
    if (this.wake) {
      this.wake();
      this.wake = null;
    }
    if (!this.opts.unblock || this.blockedVersion === null || this.unblockTimer) return;
    // The XREAD may still be on its way to Redis, where an UNBLOCK finds nothing
    // to unblock: repeat until the read with the old key set has returned.
    const send = () => {
      if (this.blockedVersion === null || this.blockedVersion === this.version || this.clientId === null) return;
      // A failed UNBLOCK is sent again in 20 ms; a Redis that is away shows in the read loop itself.
      this.control.client('UNBLOCK', this.clientId).catch(() => undefined);
    };
    send();
    this.unblockTimer = setInterval(() => {
      if (this.blockedVersion === null || this.blockedVersion === this.version) {
        clearInterval(this.unblockTimer!);
        this.unblockTimer = null;
        return;
      }
      send();
    }, UNBLOCK_RETRY_MS);
    this.unblockTimer.unref();
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      if (this.streams.size === 0) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      let reply: XReadReply | null;
      try {
        if (this.lostAt !== null) await this.resumeAll();
        if (this.opts.unblock && this.clientId === null) this.clientId = await this.conn.clientId();
        const keys = [...this.streams.keys()];
        const ids = keys.map((k) => {
          const tracked = this.streams.get(k)!;
          return (tracked.askedAfter = tracked.lastId);
        });
        this.blockedVersion = this.version;
        this.lastAnswer = Date.now();
        reply = await this.conn.xread(this.opts.count, this.opts.blockMs, keys, ids);
        this.lastAnswer = Date.now();
        failures = 0;
      } catch (err) {
        if (this.stopped) break;
        this.lost(err as Error);
        await new Promise((r) => setTimeout(r, Math.min(RETRY_MAX_MS, 25 * 2 ** failures++)));
        continue;
      } finally {
        this.blockedVersion = null;
      }
      if (reply) this.deliver(reply);
    }
  }

  private deliver(reply: XReadReply): void {
    for (const [keyBuf, entries] of reply) {
      const tracked = this.streams.get(keyBuf.toString());
      if (!tracked || entries.length === 0) continue;
      // A stream re-added or resumed during this read may already be past some of these (entries come in id order).
      const fresh = tracked.askedAfter === tracked.lastId || compareIds(entries[0][0].toString(), tracked.lastId) > 0
        ? entries
        : entries.filter((e) => compareIds(e[0].toString(), tracked.lastId) > 0);
      if (fresh.length === 0) continue;
      tracked.lastId = fresh[fresh.length - 1][0].toString();
      try {
        tracked.onEntries(fresh);
      } catch (err) {
        log.error('stream handler failed', { error: (err as Error).stack });
      }
    }
  }

  private lost(err: Error): void {
    this.clientId = null;
    if (this.lostAt !== null) return;
    this.lostAt = Date.now();
    this.m.readerReconnects.inc();
    log.warn('stream reads fail; retrying', { error: err.message, streams: this.streams.size });
  }

  /** Back after a loss: each follower checks its history before reading on. */
  private async resumeAll(): Promise<void> {
    for (const [key, tracked] of [...this.streams]) {
      if (!tracked.resume) continue;
      const from = await tracked.resume(tracked.lastId);
      if (this.streams.get(key) === tracked) tracked.lastId = from;
    }
    log.info('stream reads work again', { down_ms: Date.now() - this.lostAt!, streams: this.streams.size });
    this.lostAt = null;
  }
}

/** Orders two stream ids ("ms-seq"). */
export function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-');
  const [bm, bs] = b.split('-');
  return Number(am) - Number(bm) || Number(as ?? 0) - Number(bs ?? 0);
}
