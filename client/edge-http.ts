/**
 * The edge's HTTP routes a viewer needs besides the socket: the monitors it
 * may watch (`GET /monitors`) and signing in (`/login`: a user and password,
 * or a still-valid token, exchanged for a fresh access token). Uses `fetch`,
 * so it runs in browsers and Node 18+ alike.
 */
import { toHttpUrl } from './edge-url.js';

export interface MonitorInfo {
  id: number;
  name: string;
  /** From what the edge read last while Redis did not answer. */
  stale?: boolean;
}

export interface SignIn {
  token: string;
  user: string;
  /** ms since the epoch. */
  expiresAt: number;
}

/** The edge refused (HTTP status and its one-line reason) or could not be reached (`status` 0). */
export class EdgeHttpError extends Error {
  readonly code = 'edge_http';
  constructor(readonly status: number, message: string) {
    super(message);
  }

  /** Other credentials are needed (none, wrong, expired or revoked ones). */
  get signInNeeded(): boolean {
    return this.status === 401 || this.status === 403;
  }
}

async function call(url: string, init: RequestInit): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, cache: 'no-store' });
  } catch (err) {
    throw new EdgeHttpError(0, `edge unreachable: ${(err as Error).message}`);
  }
  if (!res.ok) throw new EdgeHttpError(res.status, (await res.text()).trim() || `HTTP ${res.status}`);
  return res;
}

const bearer = (token: string | undefined): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});

/** The monitors these credentials may watch, never others. */
export async function listMonitors(edgeUrl: string, token?: string): Promise<MonitorInfo[]> {
  const res = await call(new URL('monitors', toHttpUrl(edgeUrl)).toString(), { headers: bearer(token) });
  return (await res.json()) as MonitorInfo[];
}

/** Whether this edge exchanges a user and password for a token (auth modes zoneminder and config). */
export async function passwordSignInOffered(edgeUrl: string): Promise<boolean> {
  const res = await call(new URL('login', toHttpUrl(edgeUrl)).toString(), {});
  return ((await res.json()) as { password_login: boolean }).password_login;
}

/** A user and password exchanged for an access token, by the rules the WebSocket applies. */
export function signIn(edgeUrl: string, user: string, password: string): Promise<SignIn> {
  return login(edgeUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, password }) });
}

/** A token still valid exchanged for a fresh one of the same user (what `getToken` may call on `auth_expiring`). */
export function refreshToken(edgeUrl: string, token: string): Promise<SignIn> {
  return login(edgeUrl, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(token) }, body: '{}' });
}

async function login(edgeUrl: string, init: RequestInit): Promise<SignIn> {
  const res = await call(new URL('login', toHttpUrl(edgeUrl)).toString(), init);
  const body = (await res.json()) as { token: string; user: string; expires_at: number };
  return { token: body.token, user: body.user, expiresAt: body.expires_at };
}
