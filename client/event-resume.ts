/**
 * The last event a client saw, per monitor: what it resumes from after a
 * reconnect (`since` + `epoch`), and the filter that keeps a resume from
 * showing an event twice.
 */
export interface ResumePoint {
  since?: string;
  epoch?: string;
}

interface Seen {
  id: string;
  epoch?: string;
}

export class EventResume {
  private readonly last = new Map<number, Seen>();

  /** Starts a monitor from an id the caller already has (e.g. kept across runs). */
  startFrom(monitorId: number, since: string): void {
    this.last.set(monitorId, { id: since });
  }

  resumePoint(monitorId: number): ResumePoint {
    const seen = this.last.get(monitorId);
    if (!seen) return {};
    return seen.epoch === undefined ? { since: seen.id } : { since: seen.id, epoch: seen.epoch };
  }

  /**
   * True for an event not seen before, which becomes the resume point. Ids
   * only order events within one history: an event of another epoch comes
   * from a history rebuilt after Redis lost the old one, whose ids may even
   * be lower, so it is new.
   */
  accept(monitorId: number, id: string, epoch: string | undefined): boolean {
    const seen = this.last.get(monitorId);
    const sameHistory = seen !== undefined && (seen.epoch === undefined || epoch === undefined || seen.epoch === epoch);
    if (sameHistory && compareEventIds(id, seen.id) <= 0) return false;
    this.last.set(monitorId, { id, epoch: epoch ?? seen?.epoch });
    return true;
  }
}

/** Orders Redis stream ids ("ms-seq") numerically; "9-0" comes before "10-0". */
export function compareEventIds(a: string, b: string): number {
  const [am, as] = parts(a);
  const [bm, bs] = parts(b);
  if (am !== bm) return am < bm ? -1 : 1;
  if (as !== bs) return as < bs ? -1 : 1;
  return 0;
}

const parts = (id: string): [bigint, bigint] => {
  const [ms, seq = '0'] = id.split('-');
  return [BigInt(ms), BigInt(seq)];
};
