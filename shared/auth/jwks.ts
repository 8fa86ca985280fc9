/**
 * Mode `jwks`: access tokens from an OIDC provider, signed with an
 * asymmetric key (RS256/ES256/EdDSA by default; HS* and `none` are never
 * accepted, so a public key can't be used as an HMAC secret). Keys come
 * from a JWKS URL (cached for auth.jwksRefreshMs; an unknown `kid` triggers a
 * re-fetch, so rotation needs no restart) or a JWKS file (re-read when it
 * changes). Issuer and audience are required and checked; so is `exp`.
 * The monitors a user may watch come from a configurable claim.
 */
import { stat, readFile } from 'node:fs/promises';
import {
  createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify,
  type JSONWebKeySet, type JWTHeaderParameters, type FlattenedJWSInput, type JWTVerifyGetKey, type CryptoKey,
} from 'jose';
import { logger } from '../log.js';
import { authMetrics } from '../metrics.js';
import type { AuthBackend } from './backend.js';
import { AuthError, AuthErrorCode, fail } from './errors.js';
import type { PresentedCredentials, Principal } from './types.js';

const log = logger('auth');
const FILE_CHECK_MS = 1000;

export interface JwksOptions {
  url?: string;
  file?: string;
  issuer: string;
  audience: string;
  algorithms: string[];
  userClaim: string;
  monitorsClaim: string;
  refreshMs: number;
  now: () => number;
}

/**
 * The monitors claim: an array of ids (numbers or digit strings), or a string
 * of ids separated by spaces or commas; `"*"` (alone or in the list) means all.
 * Anything else grants nothing.
 */
export function parseMonitorsClaim(v: unknown): ReadonlySet<number> | '*' {
  const items: unknown[] = typeof v === 'string' ? v.split(/[\s,]+/).filter(Boolean) : Array.isArray(v) ? v : [];
  const out = new Set<number>();
  for (const item of items) {
    if (item === '*') return '*';
    const n = typeof item === 'string' && /^\d{1,10}$/.test(item) ? Number(item) : item;
    if (typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffffffff) out.add(n);
  }
  return out;
}

/** A claim by name, or by a dotted path into nested objects (`resource_access.zmcast.monitors`). */
export function readClaim(payload: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(payload, name)) return payload[name];
  let v: unknown = payload;
  for (const part of name.split('.')) {
    if (typeof v !== 'object' || v === null || !Object.hasOwn(v, part)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/** A JWKS file, re-read when its mtime or size changes; a bad new version keeps the old keys. */
class FileJwks {
  private keys: ReturnType<typeof createLocalJWKSet> | undefined;
  private stamp = '';
  private checkedAt = 0;

  constructor(private readonly path: string, private readonly now: () => number) {}

  async load(): Promise<void> {
    const s = await stat(this.path);
    const stamp = `${s.mtimeMs}:${s.size}`;
    if (stamp === this.stamp && this.keys) return;
    const parsed = JSON.parse(await readFile(this.path, 'utf8')) as JSONWebKeySet;
    if (!parsed || !Array.isArray(parsed.keys)) throw new Error('not a JWKS (no "keys" array)');
    this.keys = createLocalJWKSet(parsed);
    this.stamp = stamp;
  }

  readonly getKey = async (header: JWTHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> => {
    if (this.now() - this.checkedAt >= FILE_CHECK_MS || !this.keys) {
      this.checkedAt = this.now();
      try {
        await this.load();
      } catch (err) {
        authMetrics().sourceErrors.inc({ source: 'jwks' });
        log.warn('cannot re-read the JWKS file; keeping the keys already loaded', { file: this.path, error: (err as Error).message });
        if (!this.keys) throw err;
      }
    }
    return this.keys!(header, token);
  };
}

/** The key source itself failed (network, HTTP status, file): the server's problem, not the token's. */
class KeySourceError extends Error {}

export class JwksAuthenticator implements AuthBackend {
  readonly mode = 'jwks' as const;
  private readonly getKey: JWTVerifyGetKey;

  private constructor(private readonly o: JwksOptions, keys: JWTVerifyGetKey) {
    this.getKey = async (header, token) => {
      try {
        return await keys(header, token);
      } catch (err) {
        if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys || err instanceof errors.JOSENotSupported) throw err;
        throw new KeySourceError((err as Error).message);
      }
    };
  }

  static async create(o: JwksOptions): Promise<JwksAuthenticator> {
    if (o.file) {
      const file = new FileJwks(o.file, o.now);
      await file.load();
      return new JwksAuthenticator(o, file.getKey);
    }
    if (!o.url) throw new Error('jwks mode needs a JWKS URL or file');
    return new JwksAuthenticator(o, createRemoteJWKSet(new URL(o.url), {
      cacheMaxAge: o.refreshMs,
      cooldownDuration: Math.min(30_000, o.refreshMs),
      timeoutDuration: 5000,
    }));
  }

  warnings(): string[] {
    return [];
  }

  async close(): Promise<void> {}

  async authenticate(p: PresentedCredentials): Promise<Principal> {
    if (p.token === undefined) {
      if (p.user !== undefined || p.authHash !== undefined || p.password !== undefined) {
        throw new AuthError(AuthErrorCode.UnsupportedCredentials, 'Only bearer tokens are accepted on this server');
      }
      throw fail.required();
    }
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(p.token, this.getKey, {
        algorithms: this.o.algorithms,
        issuer: this.o.issuer,
        audience: this.o.audience,
        requiredClaims: ['exp'],
        currentDate: new Date(this.o.now()),
      }));
    } catch (err) {
      throw this.mapError(err);
    }
    // Where the provider names the token's type (Keycloak `typ`, Cognito `token_use`), only access
    // tokens pass: an ID token of the same audience says who someone is, not what they may do.
    const kind = [payload.typ, payload.type, payload.token_use].find((v) => typeof v === 'string');
    if (typeof kind === 'string' && kind.toLowerCase() === 'refresh') {
      throw new AuthError(AuthErrorCode.RefreshToken, 'Only access tokens are allowed');
    }
    if (typeof kind === 'string' && kind.toLowerCase() === 'id') throw fail.invalidToken(`an ID token (${kind}), not an access token`);
    const user = readClaim(payload, this.o.userClaim);
    if (typeof user !== 'string' || user === '') throw fail.invalidToken(`claim ${this.o.userClaim} is not a non-empty string`);
    const monitors = parseMonitorsClaim(readClaim(payload, this.o.monitorsClaim));
    return new JwksPrincipal(user, (payload.exp as number) * 1000, monitors);
  }

  private mapError(err: unknown): AuthError {
    if (err instanceof errors.JWTExpired) return fail.expired();
    if (err instanceof KeySourceError) {
      authMetrics().sourceErrors.inc({ source: 'jwks' });
      return fail.unavailable(`JWKS: ${err.message}`);
    }
    if (err instanceof errors.JOSEError) return fail.invalidToken(`jose ${err.code}`);
    return fail.invalidToken('malformed token');
  }
}

class JwksPrincipal implements Principal {
  readonly method = 'token' as const;

  constructor(readonly user: string, readonly expiresAt: number, private readonly monitors: ReadonlySet<number> | '*') {}

  canView(monitorId: number): boolean {
    return this.monitors === '*' || this.monitors.has(monitorId);
  }

  /** Stateless: the token's claims are all there is, and expiry is checked by the facade. */
  async revalidate(): Promise<void> {}
}
