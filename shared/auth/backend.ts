/** What each auth mode implements; the `Authenticator` facade adds limits, metrics and logs around it. */
import type { AuthConfig } from '../config.js';
import type { AuthMode, PresentedCredentials, Principal } from './types.js';

export interface AuthBackend {
  readonly mode: AuthMode;
  authenticate(presented: PresentedCredentials, clientAddress: string): Promise<Principal>;
  warnings(): string[];
  close(): Promise<void>;
  /** Takes a re-read configuration where the mode keeps state from it (config users). */
  reload?(config: AuthConfig): void;
}

/** Everyone, everything: mode `none`, and ZoneMinder with ZM_OPT_USE_AUTH off. */
export class AnonymousPrincipal implements Principal {
  readonly user = '';
  readonly method = 'anonymous' as const;
  readonly expiresAt = null;

  constructor(private readonly check: () => Promise<void> = async () => {}) {}

  canView(): boolean {
    return true;
  }

  revalidate(): Promise<void> {
    return this.check();
  }
}
