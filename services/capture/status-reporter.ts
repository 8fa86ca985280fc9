/**
 * The monitor's status record: written every statusIntervalMs with a TTL, so
 * a capture node that dies leaves no status behind, and edges call a record
 * older than two intervals stale. fps and kbps count what Redis accepted over
 * the last interval (what viewers can get), not what the camera sent. Each
 * write also re-asserts the monitor in the registry, so a Redis that restarted
 * empty knows every monitor again within one interval.
 */
import type { Config, MonitorSpec } from '../../shared/config.js';
import type { StatusRecord } from '../../shared/status-record.js';
import type { Publisher } from './publisher.js';

export type CaptureState = StatusRecord['state'];

export class StatusReporter {
  private state: CaptureState = 'connecting';
  private generation = 0;
  private packets = 0;
  private intervalStart = performance.now();
  private fps = 0;
  private kbps = 0;
  private lastPacketTime: number | null = null;
  private size: { width: number; height: number } | null = null;
  private readonly startupTime = Date.now();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly publisher: Publisher,
    private readonly spec: MonitorSpec,
    private readonly config: Config['capture'],
  ) {}

  start(): void {
    this.write();
    this.timer = setInterval(() => {
      this.measure();
      this.write();
      this.publisher.reassert(this.spec.name);
    }, this.config.statusIntervalMs);
    this.timer.unref();
  }

  /** Stops the refresh and writes the final state; the TTL still ends the record. */
  stop(state: CaptureState): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.fps = this.kbps = 0;
    this.set(state, this.generation);
  }

  /** `size`: the picture of the connection that starts (from its codec config). */
  set(state: CaptureState, generation: number, size?: { width: number; height: number }): void {
    const changed = state !== this.state;
    this.state = state;
    this.generation = generation;
    if (size) this.size = size;
    if (changed) this.write();
  }

  /** Hot path: counters only. */
  packet(time: number): void {
    this.packets++;
    this.lastPacketTime = time;
  }

  private measure(): void {
    const now = performance.now();
    const seconds = Math.max(0.001, (now - this.intervalStart) / 1000);
    const accepted = this.publisher.takeAccepted();
    this.fps = round2(accepted.packets / seconds);
    this.kbps = round2((accepted.bytes * 8) / 1000 / seconds);
    this.intervalStart = now;
  }

  /** State changes are written at once, with the rates of the last full interval. */
  private write(): void {
    const record: StatusRecord = {
      monitor_id: this.spec.id,
      monitor_name: this.spec.name,
      state: this.state,
      publishing: this.publisher.publishState(),
      fps: this.fps,
      kbps: this.kbps,
      last_packet_time: this.lastPacketTime,
      capture_node: this.config.node,
      generation: this.generation,
      width: this.size?.width ?? 0,
      height: this.size?.height ?? 0,
      packets: this.packets,
      startup_time: this.startupTime,
      updated: Date.now(),
      interval_ms: this.config.statusIntervalMs,
    };
    this.publisher.status(record, this.config.statusTtlMs);
  }
}

const round2 = (n: number) => Math.round(n * 100) / 100;
