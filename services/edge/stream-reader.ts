/**
 * One blocking XREAD loop over many streams. The edge runs one of these for
 * all monitors that have local subscribers (one per monitor on Redis Cluster,
 * where a multi-key read must stay in one slot), so Redis sees one read per
 * batch of packets however many viewers there are.
 */
import type { RedisClient } from '../../shared/redis.js';
import { edgeMetrics } from '../../shared/metrics.js';
import { logger } from '../../shared/log.js';

export type StreamEntry = [id: Buffer, fields: Buffer[]];
export type EntriesHandler = (entries: StreamEntry[]) => void;

interface Tracked {
  lastId: string;
  onEntries: EntriesHandler;
}

const log = logger('stream-reader');

export class StreamReader {
  private readonly streams = new Map<string, Tracked>();
  private clientId: number | null = null;
  private blocked = false;
  private stopped = false;
  private wake: (() => void) | null = null;
  private loop: Promise<void> | null = null;

  constructor(
    private readonly conn: RedisClient,
    private readonly control: RedisClient,
    private readonly opts: { blockMs: number; count: number; unblock: boolean },
  ) {}

  get size(): number {
    return this.streams.size;
  }

  /** Reads `key` from after `fromId` on ("0-0" for the whole stream). */
  add(key: string, fromId: string, onEntries: EntriesHandler): void {
    this.streams.set(key, { lastId: fromId, onEntries });
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
  }

  /** A blocked XREAD only sees its key set at call time, so changes wake it. */
  private interrupt(): void {
    if (this.wake) {
      this.wake();
      this.wake = null;
    }
    if (this.blocked && this.opts.unblock && this.clientId !== null) {
      this.control.client('UNBLOCK', this.clientId).catch(() => {});
    }
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      if (this.streams.size === 0) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      const keys = [...this.streams.keys()];
      const ids = keys.map((k) => this.streams.get(k)!.lastId);
      let reply: [Buffer, StreamEntry[]][] | null;
      try {
        if (this.opts.unblock && this.clientId === null) this.clientId = Number(await this.conn.client('ID'));
        this.blocked = true;
        reply = (await this.conn.xreadBuffer('COUNT', this.opts.count, 'BLOCK', this.opts.blockMs, 'STREAMS', ...keys, ...ids)) as
          | [Buffer, StreamEntry[]][]
          | null;
        failures = 0;
      } catch (err) {
        if (this.stopped) break;
        edgeMetrics().readerReconnects.inc();
        log.warn('stream read failed; retrying', { error: (err as Error).message });
        this.clientId = null; // a reconnect gives the connection a new id
        await new Promise((r) => setTimeout(r, Math.min(2000, 50 * 2 ** failures++)));
        continue;
      } finally {
        this.blocked = false;
      }
      if (!reply) continue;
      for (const [keyBuf, entries] of reply) {
        const tracked = this.streams.get(keyBuf.toString());
        if (!tracked || entries.length === 0) continue;
        // A stream re-added during this read may already be past some of these.
        const fresh = entries.filter((e) => compareIds(e[0].toString(), tracked.lastId) > 0);
        if (fresh.length === 0) continue;
        tracked.lastId = fresh[fresh.length - 1][0].toString();
        try {
          tracked.onEntries(fresh);
        } catch (err) {
          log.error('stream handler failed', { error: (err as Error).stack });
        }
      }
    }
  }
}

/** Orders two stream ids ("ms-seq"). */
export function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-');
  const [bm, bs] = b.split('-');
  return Number(am) - Number(bm) || Number(as ?? 0) - Number(bs ?? 0);
}
