/**
 * Releases media at wall-clock speed by its timestamps, as a live camera does.
 * Synthetic and file sources can produce frames far faster than real time, and
 * a burst would fill the stream with the future and trim away the present.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** A jump this large either way (a file loop, a stall) re-anchors instead of stalling or bursting. */
const MAX_DRIFT_MS = 1000;

export class Pacer {
  private originWallMs = 0;
  private originUs: bigint | null = null;

  constructor(private readonly signal: AbortSignal) {}

  /** Resolves when media time `tsUs` is due, or at once when the signal is aborted. */
  async wait(tsUs: bigint): Promise<void> {
    const now = performance.now();
    if (this.originUs === null) {
      this.anchor(now, tsUs);
      return;
    }
    const aheadMs = this.originWallMs + Number(tsUs - this.originUs) / 1000 - now;
    if (Math.abs(aheadMs) > MAX_DRIFT_MS) {
      this.anchor(now, tsUs);
      return;
    }
    if (aheadMs > 0) await sleep(aheadMs, undefined, { signal: this.signal }).catch(() => undefined);
  }

  private anchor(wallMs: number, tsUs: bigint): void {
    this.originWallMs = wallMs;
    this.originUs = tsUs;
  }
}
