/** Edge addresses as users give them (`http://host:8080`) and as sockets need them. */

/** `http://host:8080` → `ws://host:8080/ws`; a ws:// URL is kept as given. */
export function toWsUrl(url: string): string {
  const u = new URL(url);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  if (u.protocol === 'https:') u.protocol = 'wss:';
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/ws';
  return u.toString();
}

/** `ws://host:8080/ws` → `http://host:8080/`: where the edge's HTTP routes (/monitors, /login) are. */
export function toHttpUrl(url: string): string {
  const u = new URL(url);
  if (u.protocol === 'ws:') u.protocol = 'http:';
  if (u.protocol === 'wss:') u.protocol = 'https:';
  u.pathname = '/';
  u.search = '';
  u.hash = '';
  return u.toString();
}

/** A URL that cannot reach an edge is the caller's mistake, not an outage to wait out. */
export function checkEdgeUrl(url: string): void {
  const scheme = new URL(toWsUrl(url)).protocol;
  if (scheme !== 'ws:' && scheme !== 'wss:') throw new Error(`an edge URL must be http, https, ws or wss, not ${scheme}`);
}
