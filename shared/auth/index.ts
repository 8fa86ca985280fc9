/** The auth API the edge and the CLI use. docs/security.md describes the behaviour. */
export { Authenticator, createAuthenticator, type AuthenticatorDeps } from './authenticator.js';
export { AuthError, AuthErrorCode, CLOSE_TRY_AGAIN_LATER, isAuthError } from './errors.js';
export {
  chooseSubprotocol, clientAddress, CREDENTIAL_LIMITS, extractCredentials, isAuthMessage, isEmpty, parseAuthMessage,
  TOKEN_SUBPROTOCOL_PREFIX, TrustedProxies, ZMCAST_SUBPROTOCOL,
} from './credentials.js';
export { hashPassword, mintToken, ZMCAST_ISSUER } from './config-users.js';
export type { AuthMethod, AuthMode, AuthStatus, PresentedCredentials, Principal, TokenSource } from './types.js';
