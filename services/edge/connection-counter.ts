/**
 * Connection caps per edge, per client address and per user. A connection
 * holds its slot from the moment its upgrade request is let in, so
 * handshakes that are still authenticating count against the caps too.
 */
import type { Config } from '../../shared/config.js';

type Limits = Pick<Config['edge'], 'maxConnections' | 'maxConnectionsPerAddress' | 'maxConnectionsPerUser'>;

/** One connection's hold on the caps, from its upgrade request until its socket closes. */
export interface ConnectionSlot {
  /**
   * Counts the connection against `user`, unless that would pass the cap.
   * The anonymous principal (`''`, auth off) is nobody in particular: only
   * the edge and address caps apply to it.
   */
  admitUser(user: string): boolean;
  /** Gives the slot back; safe to call more than once. */
  release(): void;
}

export class ConnectionCounter {
  private total = 0;
  private readonly byAddress = new Map<string, number>();
  private readonly byUser = new Map<string, number>();

  constructor(private readonly limits: Limits) {}

  /** A slot for a new connection from `address`, or the cap it would break. */
  reserve(address: string): ConnectionSlot | 'edge' | 'address' {
    if (this.total >= this.limits.maxConnections) return 'edge';
    if ((this.byAddress.get(address) ?? 0) >= this.limits.maxConnectionsPerAddress) return 'address';
    this.total++;
    this.byAddress.set(address, (this.byAddress.get(address) ?? 0) + 1);
    let user: string | null = null;
    let released = false;
    return {
      admitUser: (name) => {
        // A login that finishes after its connection closed must not take a slot nobody will give back.
        if (released) return false;
        if (user !== null) return user === name;
        if (name === '') return true;
        const n = this.byUser.get(name) ?? 0;
        if (n >= this.limits.maxConnectionsPerUser) return false;
        this.byUser.set(name, n + 1);
        user = name;
        return true;
      },
      release: () => {
        if (released) return;
        released = true;
        this.total--;
        decrement(this.byAddress, address);
        if (user !== null) decrement(this.byUser, user);
      },
    };
  }
}

function decrement(map: Map<string, number>, key: string): void {
  const n = (map.get(key) ?? 1) - 1;
  if (n <= 0) map.delete(key);
  else map.set(key, n);
}
