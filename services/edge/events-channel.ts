/**
 * One monitor's events on one edge. Live events are read once and framed
 * once for all local subscribers. A subscriber that names `since` first gets
 * everything after that id still retained, in order, each exactly once, then
 * joins the live flow: live events arriving during its catch-up are held and
 * deduplicated by id.
 */
import type { MonitorKeys } from '../../shared/redis-keys.js';
import type { RedisClient } from '../../shared/redis.js';
import type { EventReply } from '../../shared/protocol.js';
import { logger } from '../../shared/log.js';
import { compareIds, type StreamEntry, type StreamReader } from './stream-reader.js';
import { textFrame, type Frame } from './frame.js';

export interface MonitorEvent {
  id: string;
  frame: Frame;
}

export interface EventsSubscriber {
  deliverEvent(event: MonitorEvent): void;
  /** `since` is older than the oldest retained event: some events after it may be gone. */
  gap(oldestRetained: string): void;
}

interface Member {
  sub: EventsSubscriber;
  /** Live events held while the catch-up read is in flight. */
  held: MonitorEvent[] | null;
  lastId: string;
}

const log = logger('events-channel');

export class EventsChannel {
  private readonly members = new Map<EventsSubscriber, Member>();
  private stopped = false;

  constructor(
    readonly monitorId: number,
    private readonly keys: MonitorKeys,
    private readonly redis: RedisClient,
    private readonly reader: StreamReader,
  ) {}

  get size(): number {
    return this.members.size;
  }

  async start(): Promise<void> {
    const last = (await this.redis.xrevrange(this.keys.events, '+', '-', 'COUNT', 1)) as [string, string[]][];
    if (this.stopped) return;
    this.reader.add(this.keys.events, last[0]?.[0] ?? '0-0', (entries) => this.onEntries(entries));
  }

  stop(): void {
    this.stopped = true;
    this.reader.remove(this.keys.events);
    this.members.clear();
  }

  /** Joins live at once; with `since`, first replays what came after it. */
  async add(sub: EventsSubscriber, since?: string): Promise<void> {
    const member: Member = { sub, held: since ? [] : null, lastId: since ?? '0-0' };
    this.members.set(sub, member);
    if (!since) return;
    const [first, entries] = await Promise.all([
      this.redis.xrange(this.keys.events, '-', '+', 'COUNT', 1) as Promise<[string, string[]][]>,
      this.redis.xrangeBuffer(this.keys.events, `(${since}`, '+') as Promise<StreamEntry[]>,
    ]);
    if (this.members.get(sub) !== member) return;
    const held = member.held ?? [];
    member.held = null;
    // Trimming removes the oldest first: once `since` itself is gone, so may be what followed it.
    const oldest = first[0]?.[0];
    if (oldest && compareIds(oldest, since) > 0) sub.gap(oldest);
    for (const e of entries) this.send(member, toEvent(this.monitorId, e));
    for (const e of held) this.send(member, e);
  }

  remove(sub: EventsSubscriber): void {
    this.members.delete(sub);
  }

  private onEntries(entries: StreamEntry[]): void {
    for (const entry of entries) {
      let event: MonitorEvent;
      try {
        event = toEvent(this.monitorId, entry);
      } catch (err) {
        log.warn('skipping malformed event', { monitor: this.monitorId, error: (err as Error).message });
        continue;
      }
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

function toEvent(monitorId: number, [idBuf, fields]: StreamEntry): MonitorEvent {
  const id = idBuf.toString();
  const body = JSON.parse(fields[1].toString()) as { event: string; message: string; time: number; generation: number };
  const reply: EventReply = {
    type: 'event',
    monitor_id: monitorId,
    event: body.event,
    message: body.message,
    id,
    time: body.time,
    generation: body.generation,
  };
  return { id, frame: textFrame(JSON.stringify(reply)) };
}
