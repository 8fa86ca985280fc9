/**
 * `GET /monitors`: the monitors the caller may watch, as JSON. It takes the
 * credentials an upgrade takes (`Authorization: Bearer`, `?token=`,
 * `?user=&pass=`…, docs/security.md) and lists only what the principal may
 * view, so no id or name reaches anyone who may not watch it. With auth mode
 * `none` everyone is the anonymous principal and sees every monitor.
 *
 * Answered within about a second whatever Redis does: from what the edge read
 * last, each entry marked `stale` (and RFC 7234 `Warning: 110`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isAuthError, type Authenticator, type Principal } from '../../shared/auth/index.js';
import type { MonitorDirectory } from './monitor-directory.js';
import { textReply } from './http-reply.js';

export async function listMonitors(req: IncomingMessage, res: ServerResponse, url: URL, auth: Authenticator, directory: MonitorDirectory): Promise<void> {
  let principal: Principal;
  try {
    const { presented, clientAddress } = auth.fromRequest(req, url);
    principal = await auth.authenticate(presented, clientAddress);
  } catch (err) {
    if (!isAuthError(err)) throw err;
    // No in-band login over plain HTTP: "nothing presented" is a 401 like any other.
    return textReply(res, err.status, `${err.publicReason}\n`, err.status === 401 ? { 'www-authenticate': 'Bearer' } : {});
  }
  const { monitors, stale } = await directory.list();
  const visible = monitors.filter((m) => principal.canView(m.id));
  const body = JSON.stringify(stale ? visible.map((m) => ({ ...m, stale: true })) : visible);
  res.writeHead(200, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    ...(stale ? { warning: '110 - "Response is Stale"' } : {}),
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}
