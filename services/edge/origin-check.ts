/**
 * Browsers send Origin on every WebSocket upgrade, so a page from another
 * site cannot ride a viewer's browser to the edge (cross-site WebSocket
 * hijacking). The Host header proves nothing: a DNS-rebinding page
 * (`http://evil.example:8080`, its name pointed at the edge) sends a Host
 * that matches its own Origin. So an Origin passes only when it is
 *   - absent (command-line clients, apps: not a browser),
 *   - listed in edge.allowedOrigins, scheme, host and port compared whole
 *     (config.ts only takes origins written as browsers send them), or `*`,
 *   - the edge's own page on a loopback name (`zmcast demo` on localhost),
 *     which no other site's page can claim.
 */
const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/;

export function originAllowed(origin: string | undefined, host: string | undefined, tls: boolean, allowed: readonly string[]): boolean {
  if (origin === undefined || allowed.includes('*') || allowed.includes(origin)) return true;
  let page: URL;
  try {
    page = new URL(origin);
  } catch {
    return false;
  }
  return LOOPBACK.test(page.hostname) && host !== undefined && page.origin === `${tls ? 'https' : 'http'}://${host.toLowerCase()}`;
}
