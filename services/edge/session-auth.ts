/**
 * Who is on the other end of one connection, over its whole life: the
 * principal from the upgrade or the in-band `auth` message, the deadline for
 * that message, the expiry warning and close, token refresh in-band, and
 * revalidation (revocation takes effect on open connections).
 */
import type { Authenticator, Principal } from '../../shared/auth/index.js';
import { isAuthError, parseAuthMessage } from '../../shared/auth/index.js';
import type { AuthConfig } from '../../shared/config.js';
import { CloseCode, ErrorCode, ProtocolError, type AuthExpiringReply, type AuthReply, type RequestId } from '../../shared/protocol.js';

export interface SessionAuthHooks {
  send(message: object): void;
  close(code: number, reason: string, metricReason: string): void;
  /** The principal changed (login, refresh, revalidation): re-check what the connection holds. */
  changed(): void;
  /** Whether this user may open one more connection (per-user cap); called on in-band login. */
  admit(user: string): boolean;
}

export class SessionAuth {
  private loginDeadline: NodeJS.Timeout | null = null;
  private expiryWarning: NodeJS.Timeout | null = null;
  private expiry: NodeJS.Timeout | null = null;
  private ended = false;

  constructor(
    private readonly authenticator: Authenticator,
    private current: Principal | null,
    readonly clientAddress: string,
    private readonly config: AuthConfig,
    private readonly hooks: SessionAuthHooks,
  ) {
    if (current) this.schedule(current);
    else this.loginDeadline = setTimeout(() => hooks.close(CloseCode.AuthExpired, 'Authentication required', 'auth_timeout'), config.inBandTimeoutMs);
  }

  get principal(): Principal | null {
    return this.current;
  }

  canView(monitorId: number): boolean {
    return this.current?.canView(monitorId) ?? false;
  }

  /**
   * The in-band `auth` command: the first login, or a fresh credential before
   * the old one expires. A refresh keeps the connection's user: the per-user
   * cap counted this connection for it.
   */
  async login(message: unknown, requestId?: RequestId): Promise<void> {
    let next: Principal;
    try {
      next = await this.authenticator.authenticate(parseAuthMessage(message), this.clientAddress);
    } catch (err) {
      if (!isAuthError(err)) throw err;
      if (!this.current) {
        this.hooks.close(err.closeCode, err.publicReason, `auth_${err.code}`);
        return;
      }
      throw new ProtocolError(ErrorCode.AuthFailed, err.publicReason, requestId);
    }
    if (this.ended) return; // the connection closed while the credentials were checked
    if (this.current && next.user !== this.current.user) {
      throw new ProtocolError(ErrorCode.AuthFailed, 'Credentials are for another user; open a new connection to change user', requestId);
    }
    if (!this.current && !this.hooks.admit(next.user)) {
      this.hooks.close(CloseCode.TryAgainLater, 'Too many connections for this user', 'capacity_user');
      return;
    }
    this.current = next;
    this.schedule(next);
    const reply: AuthReply = { type: 'auth', user: next.user, expires_at: next.expiresAt };
    if (requestId !== undefined) reply.request_id = requestId;
    this.hooks.send(reply);
    this.hooks.changed();
  }

  /** Re-reads the principal's rights; a revoked or disabled one closes the connection. */
  async revalidate(): Promise<void> {
    const principal = this.current;
    if (!principal) return;
    try {
      await principal.revalidate();
    } catch (err) {
      if (this.current !== principal) return; // replaced by a fresh login meanwhile
      if (isAuthError(err)) this.hooks.close(err.closeCode, err.publicReason, `auth_${err.code}`);
      else this.hooks.close(CloseCode.TryAgainLater, 'Authentication source unavailable', 'auth_unavailable');
      return;
    }
    // A far expiry had no timers yet (past setTimeout's range): set them once it comes within range.
    if (this.current === principal && !this.expiry && principal.expiresAt !== null) this.schedule(principal);
    this.hooks.changed();
  }

  /** The connection closed: no more timers, and a login still in flight is dropped. */
  dispose(): void {
    this.ended = true;
    this.clearTimers();
  }

  private clearTimers(): void {
    for (const t of [this.loginDeadline, this.expiryWarning, this.expiry]) if (t) clearTimeout(t);
    this.loginDeadline = this.expiryWarning = this.expiry = null;
  }

  private schedule(p: Principal): void {
    this.clearTimers();
    if (p.expiresAt === null) return;
    const left = p.expiresAt - Date.now();
    const warnIn = left - this.config.expiryWarningMs;
    const warning: AuthExpiringReply = { type: 'auth_expiring', expires_at: p.expiresAt };
    // setTimeout takes at most 2^31-1 ms (~24.8 days) and fires at once past it; a later
    // reschedule (refresh, revalidation) sets these timers when they come within range.
    if (this.config.expiryWarningMs > 0 && warnIn <= MAX_TIMEOUT_MS) this.expiryWarning = setTimeout(() => this.hooks.send(warning), Math.max(0, warnIn));
    if (left > MAX_TIMEOUT_MS) return;
    this.expiry = setTimeout(() => this.hooks.close(CloseCode.AuthExpired, 'Credentials expired', 'auth_expired'), Math.max(0, left));
  }
}

const MAX_TIMEOUT_MS = 2 ** 31 - 1;
