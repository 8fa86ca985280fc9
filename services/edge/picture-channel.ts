/**
 * Derived picture streams on one edge: for every (monitor, spec, rate) that
 * has local subscribers, one PictureChannel keeps the workers' stream alive
 * (PictureClient.want() every second, as the contract asks at least every
 * 2 s), follows it with one shared StreamReader, and hands each picture to
 * every subscriber, its frames built once (cached-picture.ts). When the last
 * subscriber leaves, the channel stops asking at once; the worker stops
 * producing a couple of seconds later.
 */
import { isCluster, type RedisClient } from '../../shared/redis.js';
import { logger } from '../../shared/log.js';
import { decodePicture } from '../../shared/pictures/picture.js';
import { PictureError, type PictureSpec } from '../../shared/pictures/picture-spec.js';
import type { Picture } from '../../shared/pictures/picture.js';
import type { PictureClient } from '../../shared/pictures/picture-client.js';
import { CachedPicture } from './cached-picture.js';
import { StreamReader, type StreamEntry } from './stream-reader.js';

const WANT_EVERY_MS = 1000;
/** A one-shot is answered or refused within this (the client's own deadline; the command queue waits on it). */
export const SNAPSHOT_TIMEOUT_MS = 3000;
/** No picture for this long past one interval while wanted: subscribers are told (`timeout`), once. */
const SILENCE_MS = 4000;
/** A picture already in the stream goes to a new subscriber at once if it is at most this much older than one interval. */
const FRESH_MARGIN_MS = 1000;
/** Pictures can be megabytes (raw 1080p): few per read. */
const READ_COUNT = 8;
const log = logger('picture-channel');

export interface PictureSubscriber {
  /** A new picture; the subscriber writes it or skips it (a slow one skips, never queues). */
  deliver(picture: CachedPicture): void;
  /** The stream cannot be kept now (camera down, no worker…); said once per change of reason. */
  failed(err: unknown): void;
}

/** One use of a channel; release() gives back exactly this use. */
export interface PictureChannelUse {
  channel: PictureChannel;
  release(): void;
}

export class PictureChannel {
  readonly subscribers = new Set<PictureSubscriber>();
  private key: string | null = null;
  private latest: CachedPicture | null = null;
  private failure: { code: string; err: unknown } | null = null;
  private asking = false;
  private stopped = false;
  private lastPictureAt = Date.now();
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly monitorId: number,
    readonly spec: PictureSpec,
    readonly fps: number,
    private readonly client: PictureClient,
    private readonly redis: RedisClient,
    private readonly reader: StreamReader,
  ) {
    this.timer = setInterval(() => this.keepWanted(), WANT_EVERY_MS);
    this.timer.unref();
    this.keepWanted();
  }

  add(sub: PictureSubscriber): void {
    this.subscribers.add(sub);
    if (this.failure) sub.failed(this.failure.err);
    else if (this.latest && this.isFresh(this.latest)) sub.deliver(this.latest);
  }

  remove(sub: PictureSubscriber): void {
    this.subscribers.delete(sub);
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    if (this.key) this.reader.remove(this.key);
    this.subscribers.clear();
  }

  /** One want() at a time: while Redis or the workers are slow, asks do not pile up. */
  private keepWanted(): void {
    if (this.asking || this.stopped) return;
    this.checkSilence();
    this.asking = true;
    this.client.want(this.monitorId, this.spec, this.fps)
      .then((key) => this.follow(key))
      .then(() => this.recovered(), (err) => this.fail(err))
      .finally(() => (this.asking = false))
      .catch((err) => log.error('keeping a picture stream failed', { monitor: this.monitorId, error: (err as Error).stack }));
  }

  private async follow(key: string): Promise<void> {
    if (this.stopped || key === this.key) return;
    // Start at the newest entry: what is already there goes out at once if it is fresh, the rest as it comes.
    // (One keepWanted() at a time, so no other follow() runs meanwhile; a failed read is retried with the next want.)
    const last = (await this.redis.xrevrangeBuffer(key, '+', '-', 'COUNT', 1)) as StreamEntry[];
    if (this.stopped) return;
    if (this.key) this.reader.remove(this.key);
    this.key = key;
    const newest = last[0];
    if (newest) this.ingest(newest, true);
    this.reader.add(key, newest ? newest[0].toString() : '0-0', { onEntries: (entries) => { for (const e of entries) this.ingest(e, false); } });
  }

  private ingest([, fields]: StreamEntry, onlyIfFresh: boolean): void {
    if (fields[0]?.toString() !== 'p' || !fields[1]) return;
    let picture: CachedPicture;
    try {
      picture = new CachedPicture(decodePicture(fields[1]));
    } catch (err) {
      log.warn('skipping a malformed picture', { monitor: this.monitorId, error: (err as Error).message });
      return;
    }
    if (onlyIfFresh && !this.isFresh(picture)) return;
    this.latest = picture;
    this.lastPictureAt = Date.now();
    if (this.failure?.code === 'timeout') this.failure = null;
    for (const sub of this.subscribers) sub.deliver(picture);
  }

  private isFresh(p: CachedPicture): boolean {
    return Date.now() - p.picture.captureTime <= 1000 / this.fps + FRESH_MARGIN_MS;
  }

  /** want() succeeded: a reason told earlier no longer holds (a silence clears only when a picture comes). */
  private recovered(): void {
    if (!this.failure || this.failure.code === 'timeout') return;
    this.failure = null;
    // The producer starts again now: its silence counts from here.
    this.lastPictureAt = Date.now();
  }

  /** Wanted, answered, and still no picture: the producer is not producing; say so rather than leave viewers waiting in silence. */
  private checkSilence(): void {
    if (this.failure || Date.now() - this.lastPictureAt < 1000 / this.fps + SILENCE_MS) return;
    this.fail(new PictureError('timeout', `no picture of monitor ${this.monitorId} for ${Math.round((Date.now() - this.lastPictureAt) / 1000)} s`));
  }

  private fail(err: unknown): void {
    if (this.stopped) return;
    const code = err instanceof PictureError ? err.code : 'internal';
    if (this.failure?.code === code) return;
    this.failure = { code, err };
    if (code === 'internal') log.warn('cannot keep a picture stream', { monitor: this.monitorId, error: (err as Error)?.message ?? String(err) });
    for (const sub of this.subscribers) sub.failed(err);
  }
}

/**
 * The edge's derived picture channels and their readers. The PictureClient
 * (BullMQ queues and an events connection) is made on the first picture
 * request: an edge nobody asks for pictures opens no connections for them.
 */
export class PictureHub {
  private readonly channels = new Map<string, { channel: PictureChannel; users: number }>();
  private readonly readers = new Map<string, StreamReader>();
  private made: PictureClient | null = null;

  constructor(
    private readonly redis: RedisClient,
    private readonly makeClient: () => PictureClient,
  ) {}

  private get client(): PictureClient {
    return (this.made ??= this.makeClient());
  }

  /** Takes a use of the (monitor, spec, fps) channel, starting it if needed. */
  acquire(monitorId: number, spec: PictureSpec, fps: number): PictureChannelUse {
    const id = channelId(monitorId, spec, fps);
    let entry = this.channels.get(id);
    if (!entry) {
      entry = { channel: new PictureChannel(monitorId, spec, fps, this.client, this.redis, this.readerFor(monitorId)), users: 0 };
      this.channels.set(id, entry);
    }
    entry.users++;
    const held = entry;
    let released = false;
    return {
      channel: held.channel,
      release: () => {
        if (released) return;
        released = true;
        if (--held.users > 0) return;
        if (this.channels.get(id) === held) this.channels.delete(id);
        held.channel.stop();
        this.dropIdleReader(monitorId);
      },
    };
  }

  /** One picture now, coalesced cluster-wide by the client; rejects with a PictureError within SNAPSHOT_TIMEOUT_MS. */
  snapshot(monitorId: number, spec: PictureSpec): Promise<Picture> {
    return this.client.snapshot(monitorId, spec, SNAPSHOT_TIMEOUT_MS);
  }

  /** Every picture reader gets answers from Redis in time (or has nothing to read). */
  readersHealthy(): boolean {
    return [...this.readers.values()].every((r) => r.healthy);
  }

  /** Channels running now (tests, metrics). */
  get size(): number {
    return this.channels.size;
  }

  async stop(): Promise<void> {
    for (const { channel } of this.channels.values()) channel.stop();
    this.channels.clear();
    await Promise.all([...this.readers.values()].map((r) => r.stop()));
    this.readers.clear();
    await this.made?.close();
    this.made = null;
  }

  /** As the video hub: one reader for every picture stream on a single Redis, one per monitor (slot) on a Cluster. */
  private readerFor(monitorId: number): StreamReader {
    const cluster = isCluster(this.redis);
    const key = cluster ? `m:${monitorId}` : 'all';
    let reader = this.readers.get(key);
    if (!reader) {
      reader = new StreamReader(this.redis, `zmcast-edge-pictures-${key}`, { blockMs: cluster ? 250 : 5000, count: READ_COUNT, unblock: !cluster });
      this.readers.set(key, reader);
    }
    return reader;
  }

  private dropIdleReader(monitorId: number): void {
    if (!isCluster(this.redis)) return;
    const key = `m:${monitorId}`;
    const reader = this.readers.get(key);
    if (!reader || reader.size > 0) return;
    this.readers.delete(key);
    reader.stop().catch((err) => log.warn('stopping a picture reader failed', { monitor: monitorId, error: (err as Error).message }));
  }
}

function channelId(monitorId: number, spec: PictureSpec, fps: number): string {
  return `${monitorId}|${spec.format}|${spec.width ?? ''}x${spec.height ?? ''}|${spec.quality ?? ''}|${fps}`;
}
