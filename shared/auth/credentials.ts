/**
 * Reads the credentials a client presented, from an HTTP upgrade request or
 * an in-band `{"command":"auth",…}` message, and the address it came from.
 * Syntax only: nothing here verifies anything.
 *
 * Accepted at the handshake (the names zms, the RTSP server and ZoneMinder's
 * WebSocket draft use):
 *   Authorization: Bearer <jwt>
 *   Sec-WebSocket-Protocol: zmcast, zmcast.token.<jwt>   (browsers cannot set headers)
 *   ?jwt_token=<jwt>   ?token=<jwt>
 *   ?auth=<hash>&user=<name>   (or username=)
 *   ?user=<name>&pass=<password>   (or username=&password=)
 */
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';
import { fail } from './errors.js';
import type { PresentedCredentials } from './types.js';

/** The subprotocol a zmcast client offers beside its token entry; the edge echoes it. */
export const ZMCAST_SUBPROTOCOL = 'zmcast';
/** `Sec-WebSocket-Protocol` entry carrying a token: this prefix, then the JWT (its characters are all legal there). */
export const TOKEN_SUBPROTOCOL_PREFIX = 'zmcast.token.';

/** Bounds on presented values: larger ones are refused before any work is done. */
export const CREDENTIAL_LIMITS = {
  token: 8192,
  /** `Users.Username` is varchar(64). */
  user: 64,
  /** bcrypt reads 72 bytes; anything much longer is not a password anyone types. */
  password: 256,
} as const;

const QUERY_NAMES = ['token', 'jwt_token', 'auth', 'user', 'username', 'pass', 'password'] as const;
const AUTH_HASH = /^[0-9a-f]{32}$/;
const TOKEN_CHARS = /^[A-Za-z0-9_\-.]+$/;
const CONTROL = /[\u0000-\u001f\u007f]/;

export interface ExtractOptions {
  /** `?user=&pass=` in the URL ends up in proxy logs; false refuses it (auth.queryPasswords). */
  queryPasswords?: boolean;
}

/** Credentials of an upgrade request. `url` defaults to parsing `req.url`. */
export function extractCredentials(req: IncomingMessage, url?: URL, opts: ExtractOptions = {}): PresentedCredentials {
  const q = url?.searchParams ?? new URL(req.url ?? '/', 'http://edge.invalid').searchParams;
  const param = (name: (typeof QUERY_NAMES)[number]): string | undefined => {
    const all = q.getAll(name);
    if (all.length > 1) throw fail.bad(`Parameter ${name} is given more than once`);
    return all[0];
  };
  const out: PresentedCredentials = { via: 'handshake' };

  const bearer = bearerToken(req.headers.authorization);
  const fromProtocol = subprotocolToken(req.headers['sec-websocket-protocol']);
  const jwtToken = param('jwt_token');
  const token = param('token');
  const chosen: [string | undefined, PresentedCredentials['tokenSource']][] = [
    [bearer, 'authorization'], [fromProtocol, 'subprotocol'], [jwtToken, 'jwt_token'], [token, 'token'],
  ];
  for (const [value, source] of chosen) {
    if (value === undefined || value === '') continue;
    out.token = checkToken(value);
    out.tokenSource = source;
    break;
  }

  const user = param('user');
  const username = param('username');
  if (user !== undefined && username !== undefined && user !== username) throw fail.bad('Parameters user and username disagree');
  const name = user ?? username;
  if (name !== undefined && name !== '') out.user = checkUser(name);

  const hash = param('auth');
  if (hash !== undefined && hash !== '') out.authHash = checkHash(hash);

  const pass = param('pass');
  const password = param('password');
  if (pass !== undefined && password !== undefined && pass !== password) throw fail.bad('Parameters pass and password disagree');
  const secret = pass ?? password;
  if (secret !== undefined && secret !== '') {
    if (opts.queryPasswords === false) throw fail.bad('Passwords in the URL are disabled on this server; use a token');
    out.password = checkPassword(secret);
  }
  return out;
}

/** True when nothing at all was presented: the edge may then wait for an in-band `auth` message. */
export function isEmpty(p: PresentedCredentials): boolean {
  return p.token === undefined && p.authHash === undefined && p.user === undefined && p.password === undefined;
}

/** Whether a parsed JSON message is the in-band `auth` command. */
export function isAuthMessage(msg: unknown): boolean {
  return typeof msg === 'object' && msg !== null && (msg as Record<string, unknown>).command === 'auth';
}

/**
 * The in-band first message:
 *   {"command":"auth","token":"<jwt>"}
 *   {"command":"auth","user":"name","pass":"secret"}      (or username/password)
 *   {"command":"auth","auth":"<hash>","user":"name"}
 * Other fields (request_id…) are ignored. Wrong types are refused, never coerced.
 */
export function parseAuthMessage(msg: unknown): PresentedCredentials {
  if (!isAuthMessage(msg)) throw fail.bad('Expected {"command":"auth",…}');
  const m = msg as Record<string, unknown>;
  const str = (key: string): string | undefined => {
    const v = m[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw fail.bad(`${key} must be a string`);
    return v === '' ? undefined : v;
  };
  const out: PresentedCredentials = { via: 'message' };
  const token = str('token') ?? str('jwt_token');
  if (token !== undefined) {
    out.token = checkToken(token);
    out.tokenSource = 'message';
  }
  const user = str('user');
  const username = str('username');
  if (user !== undefined && username !== undefined && user !== username) throw fail.bad('user and username disagree');
  const name = user ?? username;
  if (name !== undefined) out.user = checkUser(name);
  const hash = str('auth');
  if (hash !== undefined) out.authHash = checkHash(hash);
  const password = str('pass') ?? str('password');
  if (password !== undefined) out.password = checkPassword(password);
  if (isEmpty(out)) throw fail.required();
  return out;
}

/**
 * The subprotocol to echo in the 101 response (`ws`' handleProtocols), or
 * false for none. A browser that offered any entry fails the connection
 * unless one is echoed, so: `zmcast` if offered, else the first entry that
 * is not a token, else the token entry itself (the client already holds it).
 */
export function chooseSubprotocol(offered: Set<string>): string | false {
  if (offered.has(ZMCAST_SUBPROTOCOL)) return ZMCAST_SUBPROTOCOL;
  let tokenEntry: string | false = false;
  for (const p of offered) {
    if (!p.startsWith(TOKEN_SUBPROTOCOL_PREFIX)) return p;
    tokenEntry ||= p;
  }
  return tokenEntry;
}

function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /^\s*Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) {
    if (/^\s*Bearer\b/i.test(header)) throw fail.bad('Malformed Authorization header');
    return undefined; // other schemes are not ours to judge
  }
  return m[1];
}

function subprotocolToken(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const entries = (Array.isArray(header) ? header.join(',') : header).split(',').map((s) => s.trim());
  const tokens = entries.filter((e) => e.startsWith(TOKEN_SUBPROTOCOL_PREFIX));
  if (tokens.length > 1) throw fail.bad('More than one token in Sec-WebSocket-Protocol');
  return tokens.length ? tokens[0].slice(TOKEN_SUBPROTOCOL_PREFIX.length) : undefined;
}

function checkToken(v: string): string {
  if (v.length > CREDENTIAL_LIMITS.token) throw fail.bad('Token too long');
  if (!TOKEN_CHARS.test(v)) throw fail.invalidToken('token has characters outside base64url and "."');
  return v;
}

function checkUser(v: string): string {
  if (v.length > CREDENTIAL_LIMITS.user) throw fail.bad('Username too long');
  if (CONTROL.test(v)) throw fail.bad('Username has control characters');
  return v;
}

function checkHash(v: string): string {
  // zms compares with strcmp against lowercase hex: anything else can never match.
  if (!AUTH_HASH.test(v)) throw fail.invalid('auth hash is not 32 lowercase hex digits');
  return v;
}

function checkPassword(v: string): string {
  if (v.length > CREDENTIAL_LIMITS.password) throw fail.bad('Password too long');
  return v;
}

// ---- Client address --------------------------------------------------------

/**
 * The narrowest prefixes refused as catch-all: a range that wide holds
 * clients, not proxies, and a client in it names any address it likes in
 * X-Forwarded-For, defeating the failure limit, the per-address cap and
 * ZM_AUTH_HASH_IPS. An IPv4-mapped IPv6 range (::ffff:0:0/96) is judged as IPv4.
 */
const NARROWEST_REFUSED = { ipv4: 7, ipv6: 31 } as const;
const V4_MAPPED = new BlockList();
V4_MAPPED.addSubnet('::ffff:0:0', 96, 'ipv6');

/** The proxies whose X-Forwarded-For is believed (auth.trustedProxies): addresses or CIDR ranges, none catch-all. */
export class TrustedProxies {
  private readonly list = new BlockList();
  readonly size: number;

  constructor(entries: readonly string[]) {
    for (const raw of entries) {
      const entry = raw.trim();
      const slash = entry.indexOf('/');
      const addr = normalizeAddress(slash < 0 ? entry : entry.slice(0, slash));
      const family = isIP(addr);
      if (!family) throw new Error(`not an IP address or CIDR range: ${JSON.stringify(raw)}`);
      const type = family === 4 ? 'ipv4' : 'ipv6';
      if (slash < 0) {
        this.list.addAddress(addr, type);
      } else {
        const prefix = Number(entry.slice(slash + 1));
        if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) {
          throw new Error(`bad prefix length in ${JSON.stringify(raw)}`);
        }
        const v4 = family === 4 ? prefix : V4_MAPPED.check(addr, 'ipv6') && prefix >= 96 ? prefix - 96 : null;
        if (v4 === null ? prefix <= NARROWEST_REFUSED.ipv6 : v4 <= NARROWEST_REFUSED.ipv4) {
          throw new Error(`${JSON.stringify(raw)} is a catch-all range: clients in it could name their own address in X-Forwarded-For; ` +
            'list the proxies\' addresses or their subnet (/8 or narrower for IPv4, /32 or narrower for IPv6)');
        }
        this.list.addSubnet(addr, prefix, type);
      }
    }
    this.size = entries.length;
  }

  has(address: string): boolean {
    const a = normalizeAddress(address);
    const family = isIP(a);
    return family !== 0 && this.list.check(a, family === 4 ? 'ipv4' : 'ipv6');
  }
}

/**
 * The client's address. X-Forwarded-For is read only when the TCP peer is a
 * trusted proxy, and then from the right: the first hop that is not itself a
 * trusted proxy is the client (the left end is whatever the client wrote).
 */
export function clientAddress(req: IncomingMessage, trusted: TrustedProxies): string {
  const peer = normalizeAddress(req.socket.remoteAddress ?? '');
  if (trusted.size === 0 || !trusted.has(peer)) return peer;
  const header = req.headers['x-forwarded-for'];
  if (header === undefined) return peer;
  const hops = (Array.isArray(header) ? header.join(',') : header).split(',').map((s) => stripPort(s.trim())).filter(Boolean);
  let last = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normalizeAddress(hops[i]);
    if (!isIP(hop)) return last; // a trusted proxy never writes garbage: stop at the last good hop
    if (!trusted.has(hop)) return hop;
    last = hop;
  }
  return last;
}

/** `::ffff:1.2.3.4` → `1.2.3.4`, so IPv4 clients of a dual-stack socket match IPv4 lists and hashes. */
export function normalizeAddress(address: string): string {
  const a = address.trim();
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(a) ? a.slice(7) : a;
}

function stripPort(hop: string): string {
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(hop);
  if (v6) return v6[1];
  const v4 = /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(hop);
  return v4 ? v4[1] : hop;
}
