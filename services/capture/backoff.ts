/**
 * Reconnect delays: exponential, capped, with full jitter between the floor
 * and the current ceiling, so the monitors of a camera switch or a recovered
 * network do not all retry in the same instant.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  /** The delay before the next attempt; each call raises the ceiling until maxMs. */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.minMs * 2 ** (this.attempt + 1));
    if (ceiling < this.maxMs) this.attempt++;
    const floor = Math.min(this.minMs, ceiling);
    return floor + this.random() * (ceiling - floor);
  }

  /** After a connection that delivered packets, start from the floor again. */
  reset(): void {
    this.attempt = 0;
  }
}
