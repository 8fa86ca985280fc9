/**
 * Capture in ZoneMinder mode: the monitors come from ZoneMinder's Monitors
 * table, chosen as zmc/zmpkg choose them (Capturing != 'None', Deleted = 0,
 * Type != 'WebSite', and this server's ServerId when ZM_SERVER_ID or
 * ZM_SERVER_NAME is set), and the table is re-read every `refreshMs` so
 * monitors added, removed or edited in ZoneMinder's web UI start, stop or
 * restart here without touching the others.
 *
 * Sources carry camera passwords (`User`/`Pass`): they are never logged.
 */
import { toCaptureSpec, type ZmCaptureSpec, type ZmDatabase, type ZmMonitorRow } from '../../shared/zoneminder/index.js';
import { logger } from '../../shared/log.js';
import { MONITORS_KEY, MONITOR_NAMES_KEY, SUB_STREAMS_KEY, monitorKeys } from '../../shared/redis-keys.js';
import type { RedisClient } from '../../shared/redis.js';
import type { ApplyResult, CaptureService } from './capture-service.js';
import type { CaptureSpec } from './source.js';

const log = logger('zm-monitors');

/** ZoneMinder camera types whose `Path` is a URL or file that FFmpeg opens as is. */
const PATH_IS_INPUT = new Set(['Ffmpeg', 'Libvlc']);

export interface ZmMonitorSourceOptions {
  db: ZmDatabase;
  capture: CaptureService;
  /** For forgetting monitors deleted in ZoneMinder (the monitor set and names the edge lists). */
  redis: RedisClient;
  /** This host in a multi-server ZoneMinder (`zmServerIdentity(vars)`); `{}` for a single server. */
  server: { id?: number; name?: string };
  refreshMs: number;
}

export class ZmMonitorSource {
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Refreshes run one after the other: an older read never lands after a newer one. */
  private chain: Promise<unknown> = Promise.resolve();
  private failing = false;
  /** Monitors skipped because zmcast cannot capture their source, with the reason already logged. */
  private readonly skipped = new Map<number, string>();
  /** Monitors whose SecondPath zmcast cannot capture (logged once); their main stream is captured. */
  private readonly skippedSecond = new Set<number>();

  private constructor(private readonly o: ZmMonitorSourceOptions, readonly serverId: number | null) {}

  /**
   * Resolves this server, reads the Monitors table and applies it, then keeps
   * re-reading it. Rejects when ZoneMinder's database cannot be read at start
   * or ZM_SERVER_NAME is not in its Servers table.
   */
  static async start(o: ZmMonitorSourceOptions): Promise<ZmMonitorSource> {
    const source = new ZmMonitorSource(o, await o.db.serverId(o.server));
    const first = await source.refresh();
    log.info('monitors from ZoneMinder', {
      server_id: source.serverId, monitors: o.capture.monitorIds, skipped: [...source.skipped.keys()], refused: first.refused.map((r) => r.id),
    });
    if (o.capture.monitorIds.length === 0 && first.refused.length === 0) {
      log.warn('ZoneMinder has no monitors for this server to capture', {
        server_id: source.serverId, rule: `Capturing != 'None' AND Deleted = 0 AND Type != 'WebSite'${source.serverId === null ? '' : ' AND ServerId = server_id'}`,
      });
    }
    source.schedule();
    return source;
  }

  /** Reads the Monitors table once and applies it. Rejects if the database cannot be read (the running set stays). */
  refresh(): Promise<ApplyResult> {
    const next = this.chain.then(() => this.refreshNow());
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Stops re-reading. The capture service and the database belong to the caller. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.chain;
  }

  private async refreshNow(): Promise<ApplyResult> {
    const rows = await this.o.db.captureMonitors(this.serverId);
    const specs: CaptureSpec[] = [];
    const seen = new Set<number>();
    for (const row of rows) {
      seen.add(row.id);
      const spec = toCaptureSpec(row);
      const why = unsupported(row, spec);
      if (spec.secondSource && !/^(rtsps?:\/\/|synthetic:)/i.test(spec.secondSource)) {
        // Only the sub-stream is out of reach: the main stream is still captured.
        if (!this.skippedSecond.has(row.id)) log.warn('sub-stream not captured: zmcast captures rtsp://, rtsps:// and synthetic: SecondPaths', { monitor: row.id });
        this.skippedSecond.add(row.id);
        delete spec.secondSource;
      } else {
        this.skippedSecond.delete(row.id);
      }
      if (why === null) {
        this.skipped.delete(row.id);
        specs.push(spec);
      } else if (this.skipped.get(row.id) !== why) {
        this.skipped.set(row.id, why);
        log.warn('monitor not captured', { monitor: row.id, type: row.type, reason: why });
      }
    }
    for (const id of this.skipped.keys()) if (!seen.has(id)) this.skipped.delete(id);
    const result = await this.o.capture.apply(specs);
    if (result.removed.length) {
      // Capture already matches the table; failing to tidy the list must not read as a failed refresh.
      await this.forgetDeleted(result.removed).catch((err: Error) =>
        log.warn('cannot check whether stopped monitors were deleted in ZoneMinder', { monitors: result.removed, error: err.message }));
    }
    return result;
  }

  /**
   * Monitors this node stopped that no longer exist in ZoneMinder leave the
   * monitor list. One that merely stopped capturing here (Capturing = None,
   * moved to another server) stays listed, as ZoneMinder's console lists it.
   */
  private async forgetDeleted(ids: number[]): Promise<void> {
    const existing = new Set((await this.o.db.monitors()).map((m) => m.id));
    const gone = ids.filter((id) => !existing.has(id)).map(String);
    if (!gone.length) return;
    await Promise.all([
      this.o.redis.srem(MONITORS_KEY, ...gone),
      this.o.redis.hdel(MONITOR_NAMES_KEY, ...gone),
      this.o.redis.srem(SUB_STREAMS_KEY, ...gone),
      // Edges take a monitor with a codec config (meta) for one capture still publishes: a deleted one keeps none.
      ...gone.map((id) => {
        const k = monitorKeys(Number(id));
        const sub = monitorKeys(Number(id), 'sub');
        return this.o.redis.del(k.meta, k.video, k.keyframes, sub.meta, sub.video, sub.keyframes);
      }),
    ]);
    log.info('monitors deleted in ZoneMinder', { monitors: gone.map(Number) });
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.refresh().then(
        () => {
          if (this.failing) log.info('ZoneMinder monitors readable again');
          this.failing = false;
        },
        (err: Error) => {
          // One line per outage; capture goes on with the monitors it has.
          if (!this.failing) log.warn('cannot read ZoneMinder monitors; capture keeps the current set', { error: err.message });
          this.failing = true;
        },
      ).finally(() => this.schedule());
    }, this.o.refreshMs);
    this.timer.unref();
  }
}

/**
 * Why zmcast cannot capture this monitor, or null. zmcast passes H.264/H.265
 * through from RTSP cameras, files and its synthetic test source; ZoneMinder's
 * local (V4L2), HTTP/MJPEG, VNC and host/port-style Remote cameras are not that.
 */
function unsupported(row: ZmMonitorRow, spec: ZmCaptureSpec): string | null {
  const s = spec.source;
  if (s.startsWith('synthetic:') || /^rtsps?:\/\//i.test(s)) return null;
  if ((s.startsWith('/') || s.startsWith('file:')) && PATH_IS_INPUT.has(row.type)) return null;
  if (s === '') return 'Path is empty (zmcast reads the camera URL from Path)';
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(s)?.[1]?.toLowerCase();
  return `zmcast captures rtsp://, rtsps:// and synthetic: Paths, and file Paths of Ffmpeg monitors; this one is ${scheme ? `${scheme}:` : 'a file path'} on a ${row.type} monitor`;
}
