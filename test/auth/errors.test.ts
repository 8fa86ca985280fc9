import { describe, expect, it } from 'vitest';
import { AuthError, AuthErrorCode, fail } from '../../shared/auth/errors.js';
import { CloseCode } from '../../shared/protocol.js';

describe('auth errors', () => {
  it('map each code to one HTTP status and one close code', () => {
    const table = Object.values(AuthErrorCode).map((code) => {
      const e = new AuthError(code, 'x');
      return [code, e.status, e.closeCode];
    });
    expect(table).toEqual([
      ['credentials_required', 401, CloseCode.AuthExpired],
      ['bad_credentials', 400, CloseCode.PolicyViolation],
      ['invalid_credentials', 401, CloseCode.AuthExpired],
      ['invalid_token', 401, CloseCode.AuthExpired],
      ['token_expired', 401, CloseCode.AuthExpired],
      ['refresh_token', 401, CloseCode.AuthExpired],
      ['revoked', 401, CloseCode.AuthRevoked],
      ['unsupported_password_format', 401, CloseCode.AuthExpired],
      ['unsupported_credentials', 401, CloseCode.AuthExpired],
      ['user_disabled', 403, CloseCode.AuthRevoked],
      ['forbidden', 403, CloseCode.AuthRevoked],
      ['rate_limited', 429, CloseCode.RateLimited],
      ['busy', 503, 1013],
      ['auth_unavailable', 503, 1013],
    ]);
  });

  it('give reason phrases for the refused upgrade and short public reasons that fit a close frame', () => {
    expect(fail.required().statusText).toBe('Unauthorized');
    expect(fail.disabled().statusText).toBe('Forbidden');
    expect(fail.unavailable('ECONNREFUSED 10.0.0.1:3306').publicReason).toBe('Authentication service unavailable');
    for (const e of [fail.required(), fail.invalid(), fail.invalidToken(), fail.expired(), fail.revoked(), fail.disabled(), fail.unavailable()]) {
      expect(Buffer.byteLength(e.publicReason)).toBeLessThanOrEqual(123);
    }
  });
});
