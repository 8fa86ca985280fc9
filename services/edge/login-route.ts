/**
 * `/login`: the page's sign-in. `POST` a JSON `{"user","password"}`, or an
 * `Authorization: Bearer` token still valid (a refresh), and get an access
 * token of the edge's auth mode back: `{"token","user","expires_at"}`. The
 * credentials go through the Authenticator exactly as an upgrade's do (failure
 * limit per address, disabled users, revoked tokens, the same answers), and
 * the token is the one `zmcast token` (config mode) or ZoneMinder's API
 * (zoneminder mode) would issue, so the WebSocket accepts it on its own terms.
 * `GET` says whether user and password are taken here (`password_login`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CREDENTIAL_LIMITS, isAuthError, type Authenticator, type PresentedCredentials } from '../../shared/auth/index.js';
import type { Config } from '../../shared/config.js';
import { textReply } from './http-reply.js';
import { originAllowed } from './origin-check.js';

const MAX_BODY_BYTES = 4096;
const NO_QUERY = new URL('http://edge.invalid/login');

export async function loginRoute(req: IncomingMessage, res: ServerResponse, auth: Authenticator, config: Config, tls: boolean): Promise<void> {
  if (req.method === 'GET' || req.method === 'HEAD') return json(res, 200, { password_login: auth.passwordLogin });
  if (req.method !== 'POST') return textReply(res, 405, 'Method not allowed\n', { allow: 'GET, POST' });
  // Another site's page must not sign its visitors in here (login CSRF): the upgrade's Origin rule.
  if (!originAllowed(req.headers.origin, req.headers.host, tls, config.edge.allowedOrigins)) return textReply(res, 403, 'Origin not allowed\n');
  const body = await readJson(req);
  if (body === null) return textReply(res, 400, 'Expected a JSON object of at most 4 KiB\n');
  try {
    // Only the Authorization header counts here: never a token or password in a URL.
    const { presented: fromHeaders, clientAddress } = auth.fromRequest(req, NO_QUERY);
    const presented = fromPassword(body) ?? fromHeaders;
    if (presented.token === undefined && presented.password === undefined) return textReply(res, 400, 'Send {"user","password"} or Authorization: Bearer <token>\n');
    const principal = await auth.authenticate(presented, clientAddress);
    const issued = await auth.issueToken(principal);
    if (!issued) return textReply(res, 404, 'This edge issues no tokens (its auth mode has none): sign in with a token\n');
    json(res, 200, { token: issued.token, user: principal.user, expires_at: issued.expiresAt });
  } catch (err) {
    if (!isAuthError(err)) throw err;
    textReply(res, err.status, `${err.publicReason}\n`, err.status === 401 ? { 'www-authenticate': 'Bearer' } : {});
  }
}

function fromPassword(body: Record<string, unknown>): PresentedCredentials | null {
  const { user, password } = body;
  if (typeof user !== 'string' || typeof password !== 'string') return null;
  if (user === '' || user.length > CREDENTIAL_LIMITS.user || password.length > CREDENTIAL_LIMITS.password) return null;
  return { user, password, via: 'handshake' };
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown> | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk as Buffer);
  }
  try {
    const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function json(res: ServerResponse, status: number, value: object): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}
