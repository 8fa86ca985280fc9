/**
 * A zms query string read the way ZoneMinder's zms reads it (src/zms.cpp):
 * split on `&`, at most 16 parameters (the rest ignored), each split on `=`
 * (a value stops at its next `=`), only the user and password values
 * URI-decoded, the last of a repeated name wins, unknown names ignored.
 * Numbers are read leniently, as atoi/atof would: a value that is not one is
 * ignored rather than refused.
 */

/** What zms serves that an edge serves: a live monitor as MJPEG, or one JPEG. */
export type ZmsMode = 'jpeg' | 'single';

export interface ZmsRequest {
  /** null when `mode`/`source` asks for something the edge does not serve (recordings, raw, zip, mpeg). */
  mode: ZmsMode | null;
  /** The parameter that asked for something else, for the error line (its value is not echoed). */
  unsupported?: 'source' | 'mode';
  monitorId: number | null;
  /** Percent of the camera's size, 1..1600 (zms' cap); undefined when not given. */
  scale?: number;
  maxfps?: number;
  width?: number;
  height?: number;
  /** The credential parameters, as zms would pass them on: for the edge's authenticator. */
  credentials: URLSearchParams;
}

export const ZMS_MAX_PARAMS = 16;
export const ZMS_MAX_SCALE = 1600;

/** The paths answered as zms: ZoneMinder's own (`/zm/cgi-bin/nph-zms`, `/cgi-bin/nph-zms`) and any prefix before `/cgi-bin/`. */
export const ZMS_PATH = /^(?:\/[A-Za-z0-9._~-]+)*\/cgi-bin\/(?:nph-)?zms$/;

const DECODED = new Set(['user', 'username', 'pass', 'password']);
const CREDENTIALS = ['token', 'auth', 'user', 'username', 'pass', 'password'] as const;

export function parseZmsQuery(search: string): ZmsRequest {
  const query = search.startsWith('?') ? search.slice(1) : search;
  const values = new Map<string, string>();
  for (const pair of query.split('&').filter((p) => p !== '').slice(0, ZMS_MAX_PARAMS)) {
    const [name, value = ''] = pair.split('=');
    values.set(name, DECODED.has(name) ? uriDecode(value) : value);
  }
  const credentials = new URLSearchParams();
  for (const name of CREDENTIALS) {
    const v = values.get(name);
    if (v !== undefined) credentials.set(name, v);
  }
  const source = values.get('source') ?? 'monitor';
  const rawMode = values.get('mode') ?? 'jpeg';
  let mode: ZmsMode | null = null;
  let unsupported: ZmsRequest['unsupported'];
  if (source !== 'monitor') unsupported = 'source';
  // zms treats `paused` as jpeg.
  else if (rawMode === 'jpeg' || rawMode === 'paused') mode = 'jpeg';
  else if (rawMode === 'single') mode = 'single';
  else unsupported = 'mode';

  const monitor = atoi(values.get('monitor'));
  const scale = atoi(values.get('scale'));
  const maxfps = atof(values.get('maxfps'));
  const width = atoi(values.get('width'));
  const height = atoi(values.get('height'));
  return {
    mode,
    unsupported,
    monitorId: monitor !== undefined && monitor >= 0 ? monitor : null,
    scale: scale !== undefined && scale > 0 ? Math.min(scale, ZMS_MAX_SCALE) : undefined,
    maxfps: maxfps !== undefined && maxfps > 0 ? maxfps : undefined,
    width: width !== undefined && width > 0 ? width : undefined,
    height: height !== undefined && height > 0 ? height : undefined,
    credentials,
  };
}

/** zms' UriDecode: `%XX` and `+` as a space; a malformed escape is kept as written. */
function uriDecode(v: string): string {
  const spaced = v.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(spaced);
  } catch {
    return spaced.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  }
}

function atoi(v: string | undefined): number | undefined {
  const m = v === undefined ? null : /^\s*([+-]?\d{1,9})/.exec(v);
  return m ? Number(m[1]) : undefined;
}

function atof(v: string | undefined): number | undefined {
  const m = v === undefined ? null : /^\s*([+-]?(?:\d{1,9}(?:\.\d*)?|\.\d+))/.exec(v);
  return m ? Number(m[1]) : undefined;
}
