/** Connection caps per edge, per client address and per user. */
import type { Config } from '../../shared/config.js';

type Limits = Pick<Config['edge'], 'maxConnections' | 'maxConnectionsPerAddress' | 'maxConnectionsPerUser'>;

export class ConnectionCounter {
  private total = 0;
  private readonly byAddress = new Map<string, number>();
  private readonly byUser = new Map<string, number>();

  constructor(private readonly limits: Limits) {}

  /** Which cap a new connection from `address` would break, if any. */
  full(address: string): 'edge' | 'address' | null {
    if (this.total >= this.limits.maxConnections) return 'edge';
    if ((this.byAddress.get(address) ?? 0) >= this.limits.maxConnectionsPerAddress) return 'address';
    return null;
  }

  open(address: string): void {
    this.total++;
    this.byAddress.set(address, (this.byAddress.get(address) ?? 0) + 1);
  }

  close(address: string): void {
    this.total--;
    decrement(this.byAddress, address);
  }

  /** Counts one more connection of `user`, unless that would pass the cap. */
  admitUser(user: string): boolean {
    const n = this.byUser.get(user) ?? 0;
    if (n >= this.limits.maxConnectionsPerUser) return false;
    this.byUser.set(user, n + 1);
    return true;
  }

  releaseUser(user: string): void {
    decrement(this.byUser, user);
  }
}

function decrement(map: Map<string, number>, key: string): void {
  const n = (map.get(key) ?? 1) - 1;
  if (n <= 0) map.delete(key);
  else map.set(key, n);
}
