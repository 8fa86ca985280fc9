/**
 * One monitor's events on one edge. Live events are read once and framed
 * once for all local subscribers. A subscriber that names `since` first gets
 * everything after that id still retained, in order, each exactly once, then
 * joins the live flow: live events arriving during its catch-up are held and
 * deduplicated by id. The catch-up is read a page at a time, and the next
 * page only once the client has taken the last one, so a client that asks
 * for the whole history and does not read costs one page, not the history.
 *
 * Every event carries the epoch of the history it belongs to. A `since` from
 * another epoch (Redis lost the history it named) gets a `history_lost`
 * notice and then the whole new history, never a silent gap.
 */
import type { MonitorKeys } from '../../shared/redis-keys.js';
import type { RedisClient } from '../../shared/redis.js';
import type { EventReply } from '../../shared/protocol.js';
import { logger } from '../../shared/log.js';
import { compareIds, type StreamEntry, type StreamFeed } from './stream-reader.js';
import { textFrame, type Frame } from './frame.js';

export interface MonitorEvent {
  id: string;
  epoch: string;
  frame: Frame;
}

export interface EventsSubscriber {
  deliverEvent(event: MonitorEvent): void;
  /** Resolves true once the client has taken what it was sent, false if it went away or fell too far behind. */
  writable(): Promise<boolean>;
  /** `since` is older than the oldest retained event: some events after it may be gone. */
  gap(oldestRetained: string): void;
  /** `since` belongs to a history Redis lost: what happened in between is unknown. */
  historyLost(epoch: string | null): void;
}

interface Member {
  sub: EventsSubscriber;
  /** Live events held while the catch-up read is in flight. */
  held: MonitorEvent[] | null;
  lastId: string;
}

const START_RETRY_MAX_MS = 1000;
/** Events per catch-up read: a few hundred KB at most. */
const CATCH_UP_PAGE = 200;
const log = logger('events-channel');

export class EventsChannel {
  private readonly members = new Map<EventsSubscriber, Member>();
  private stopped = false;
  private epoch: string | null = null;

  constructor(
    readonly monitorId: number,
    private readonly keys: MonitorKeys,
    private readonly redis: RedisClient,
    private readonly reader: StreamFeed,
  ) {}

  get size(): number {
    return this.members.size;
  }

  /** Follows the stream from its newest event; retries until Redis answers. */
  async start(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        const [last, epoch] = await Promise.all([
          this.redis.xrevrange(this.keys.events, '+', '-', 'COUNT', 1) as Promise<[string, string[]][]>,
          this.redis.hget(this.keys.meta, 'epoch'),
        ]);
        if (this.stopped) return;
        this.epoch = epoch;
        this.reader.add(this.keys.events, last[0]?.[0] ?? '0-0', {
          onEntries: (entries) => this.onEntries(entries),
          resume: (lastId) => this.resume(lastId),
        });
        return;
      } catch (err) {
        if (attempt === 0) log.warn('cannot follow the monitor\'s events yet; retrying', { monitor: this.monitorId, error: (err as Error).message });
        await new Promise((r) => setTimeout(r, Math.min(START_RETRY_MAX_MS, 50 * 2 ** attempt)));
      }
    }
  }

  stop(): void {
    this.stopped = true;
    this.reader.remove(this.keys.events);
    this.members.clear();
  }

  /** Joins live at once; with `since`, first replays what came after it. */
  async add(sub: EventsSubscriber, since?: string, epoch?: string): Promise<void> {
    const member: Member = { sub, held: since ? [] : null, lastId: since ?? '0-0' };
    this.members.set(sub, member);
    if (!since) return;
    const [first, current] = await Promise.all([
      this.redis.xrange(this.keys.events, '-', '+', 'COUNT', 1) as Promise<[string, string[]][]>,
      this.redis.hget(this.keys.meta, 'epoch'),
    ]);
    if (this.members.get(sub) !== member) return;
    let from = since;
    if (epoch !== undefined && epoch !== current) {
      // Ids of the lost history say nothing about the new one: replay all of it.
      sub.historyLost(current);
      from = '0-0';
      member.lastId = '0-0';
    } else {
      // Trimming removes the oldest first: once `since` itself is gone, so may be what followed it.
      const oldest = first[0]?.[0];
      if (oldest && compareIds(oldest, since) > 0) sub.gap(oldest);
    }
    for (;;) {
      // Each page only once the client has taken what it was sent (the first one too: it may be behind already).
      if (!(await sub.writable()) || this.members.get(sub) !== member) return;
      const page = (await this.redis.xrangeBuffer(this.keys.events, `(${from}`, '+', 'COUNT', CATCH_UP_PAGE)) as StreamEntry[];
      if (this.members.get(sub) !== member) return;
      for (const e of page) this.send(member, toEvent(this.monitorId, e, current ?? ''));
      if (page.length < CATCH_UP_PAGE) break;
      from = page[page.length - 1][0].toString();
    }
    const held = member.held ?? [];
    member.held = null;
    for (const e of held) this.send(member, e);
  }

  remove(sub: EventsSubscriber): void {
    this.members.delete(sub);
  }

  /** After the reader lost Redis: read on in the same history, or tell members it is gone. */
  private async resume(lastId: string): Promise<string> {
    const epoch = await this.redis.hget(this.keys.meta, 'epoch');
    if (epoch !== null && epoch === this.epoch) return lastId;
    this.changed(epoch);
    return '0-0';
  }

  private changed(epoch: string | null): void {
    if (this.epoch !== null && epoch !== this.epoch) {
      for (const member of this.members.values()) {
        member.sub.historyLost(epoch);
        member.lastId = '0-0';
      }
    }
    this.epoch = epoch;
  }

  private onEntries(entries: StreamEntry[]): void {
    for (const entry of entries) {
      let event: MonitorEvent;
      try {
        event = toEvent(this.monitorId, entry, this.epoch ?? '');
      } catch (err) {
        log.warn('skipping malformed event', { monitor: this.monitorId, error: (err as Error).message });
        continue;
      }
      if (event.epoch !== this.epoch) this.changed(event.epoch);
      for (const member of this.members.values()) {
        if (member.held) member.held.push(event);
        else this.send(member, event);
      }
    }
  }

  private send(member: Member, event: MonitorEvent): void {
    if (compareIds(event.id, member.lastId) <= 0) return;
    member.lastId = event.id;
    member.sub.deliverEvent(event);
  }
}

/** Fields: `e` the event JSON, `h` the epoch (events written before epochs existed have none). */
function toEvent(monitorId: number, [idBuf, fields]: StreamEntry, defaultEpoch: string): MonitorEvent {
  const id = idBuf.toString();
  const body = JSON.parse(fields[1].toString()) as { event: string; message: string; time: number; generation: number };
  const epoch = fields[2]?.toString() === 'h' ? fields[3].toString() : defaultEpoch;
  const reply: EventReply = {
    type: 'event',
    monitor_id: monitorId,
    event: body.event,
    message: body.message,
    id,
    time: body.time,
    generation: body.generation,
    epoch,
  };
  return { id, epoch, frame: textFrame(JSON.stringify(reply)) };
}
