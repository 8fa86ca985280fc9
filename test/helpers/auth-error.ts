/**
 * For tests of an authenticator called directly (no edge, no socket): the
 * AuthError a login or revalidation is refused with. The refusal of a real
 * WebSocket upgrade is `upgradeRefusal` in test/security/rig.ts.
 */
import { AuthError } from '../../shared/auth/errors.js';

/** The AuthError `p` rejects with; anything else, or no rejection, fails the test. */
export async function authErrorFrom(p: Promise<unknown>): Promise<AuthError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AuthError) return err;
    throw err;
  }
  throw new Error('expected an AuthError');
}
