/**
 * Runs a MonitorCapture for every monitor assigned to this node: the
 * configured list at start, then whatever `apply()` is given (the ZoneMinder
 * Monitors table, re-read while running). A monitor that did not change keeps
 * its camera connection through every apply.
 */
import type { Config } from '../../shared/config.js';
import { logger } from '../../shared/log.js';
import type { RedisClient } from '../../shared/redis.js';
import { MonitorCapture } from './monitor-capture.js';
import type { CaptureSpec } from './source.js';

const log = logger('capture');

export interface ApplyResult {
  added: number[];
  removed: number[];
  /** Running monitors whose camera settings or name changed: stopped, then started anew. */
  replaced: number[];
  /** Monitors whose source can never work (e.g. a bad synthetic: query), with the reason; not started. */
  refused: { id: number; reason: string }[];
}

export class CaptureService {
  private readonly captures = new Map<number, MonitorCapture>();
  private started = false;
  private stopped = false;
  /** start(), apply() and stop() run one after the other, never interleaved. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Specs already refused, by id: the same spec is not tried (nor logged) again on every apply. */
  private readonly refused = new Map<number, CaptureSpec>();

  /** Throws for a configured monitor whose source can never work, before anything starts. */
  constructor(private readonly redis: RedisClient, private readonly config: Config) {
    for (const spec of config.capture.monitors) this.captures.set(spec.id, new MonitorCapture(redis, spec, config));
  }

  /** Ids of the monitors being captured, ascending. */
  get monitorIds(): number[] {
    return [...this.captures.keys()].sort((a, b) => a - b);
  }

  start(): Promise<void> {
    return this.serial(async () => {
      if (this.stopped) return;
      this.started = true;
      await Promise.all([...this.captures.values()].map((c) => c.start()));
      log.info('capture started', { monitors: this.monitorIds });
    });
  }

  /**
   * Makes the running set equal `specs`: starts the new monitors, stops the
   * ones no longer listed, and restarts those whose name, source or camera
   * options changed. Everything else is left alone. A monitor that cannot be
   * built is refused and logged; the others still apply.
   */
  apply(specs: readonly CaptureSpec[]): Promise<ApplyResult> {
    return this.serial(() => this.applyNow(specs));
  }

  stop(): Promise<void> {
    return this.serial(async () => {
      this.stopped = true;
      const all = [...this.captures.values()];
      this.captures.clear();
      await Promise.all(all.map((c) => c.stop()));
      log.info('capture stopped', { monitors: all.length });
    });
  }

  private serial<T>(task: () => Promise<T>): Promise<T> {
    const next = this.queue.then(task);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async applyNow(specs: readonly CaptureSpec[]): Promise<ApplyResult> {
    const result: ApplyResult = { added: [], removed: [], replaced: [], refused: [] };
    if (this.stopped) return result;
    const wanted = new Map(specs.map((s) => [s.id, s]));
    const toStop: MonitorCapture[] = [];
    for (const [id, capture] of this.captures) {
      const spec = wanted.get(id);
      if (!spec) {
        result.removed.push(id);
        toStop.push(capture);
        this.captures.delete(id);
      } else if (!sameSpec(capture.spec, spec)) {
        result.replaced.push(id);
        toStop.push(capture);
        this.captures.delete(id);
      }
    }
    // Stopped first: a replacement must not publish beside the capture it replaces.
    await Promise.all(toStop.map((c) => c.stop()));
    const toStart: MonitorCapture[] = [];
    for (const id of this.refused.keys()) if (!wanted.has(id)) this.refused.delete(id);
    for (const spec of wanted.values()) {
      if (this.captures.has(spec.id)) continue;
      const before = this.refused.get(spec.id);
      if (before && sameSpec(before, spec)) continue;
      let capture: MonitorCapture;
      try {
        capture = new MonitorCapture(this.redis, spec, this.config);
        this.refused.delete(spec.id);
      } catch (err) {
        this.refused.set(spec.id, spec);
        result.refused.push({ id: spec.id, reason: (err as Error).message });
        log.error('monitor refused: its source can never work', { monitor: spec.id, reason: (err as Error).message });
        if (result.replaced.includes(spec.id)) {
          result.replaced = result.replaced.filter((id) => id !== spec.id);
          result.removed.push(spec.id);
        }
        continue;
      }
      this.captures.set(spec.id, capture);
      toStart.push(capture);
      if (!result.replaced.includes(spec.id)) result.added.push(spec.id);
    }
    if (this.started) await Promise.all(toStart.map((c) => c.start()));
    if (result.added.length || result.removed.length || result.replaced.length) {
      log.info('monitors changed', { added: result.added, removed: result.removed, replaced: result.replaced, monitors: this.monitorIds });
    }
    return result;
  }
}

/** Same camera and name: the capture may keep running. */
function sameSpec(a: CaptureSpec, b: CaptureSpec): boolean {
  return a.name === b.name && a.source === b.source && (a.rtspTransport ?? '') === (b.rtspTransport ?? '') && sameOptions(a.options, b.options);
}

function sameOptions(a: Record<string, string> = {}, b: Record<string, string> = {}): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}
