/**
 * The `Config` table options zmcast honours, typed, with ZoneMinder's own
 * parsing (booleans and integers are strtol'd strings) and defaults.
 */
export type AuthRelay = 'hashed' | 'plain' | 'none';

export interface ZmOptions {
  useAuth: boolean;
  relay: AuthRelay;
  secret: string;
  hashIps: boolean;
  /** Hours, as stored; see `effectiveHashTtl` for the value the hash check uses. */
  hashTtl: number;
  caseInsensitiveUsernames: boolean;
}

export const ZM_OPTION_NAMES = [
  'ZM_OPT_USE_AUTH',
  'ZM_AUTH_RELAY',
  'ZM_AUTH_HASH_SECRET',
  'ZM_AUTH_HASH_IPS',
  'ZM_AUTH_HASH_TTL',
  'ZM_CASE_INSENSITIVE_USERNAMES',
] as const;

/** ConfigData.pm's shipped value: anyone can forge tokens and hashes with it. */
export const ZM_DEFAULT_SECRET = '...Change me to something unique...';

/** C strtol on a decimal string: leading whitespace and sign, digits until the first non-digit, 0 if none. */
function strtol(v: string | undefined): number {
  const m = /^\s*([+-]?\d+)/.exec(v ?? '');
  return m ? Number(m[1]) : 0;
}

export function parseZmOptions(rows: readonly { Name: string; Value: string | null }[]): ZmOptions {
  const v = new Map(rows.map((r) => [r.Name, r.Value ?? '']));
  const relay = (v.get('ZM_AUTH_RELAY') ?? 'hashed').trim();
  return {
    useAuth: strtol(v.get('ZM_OPT_USE_AUTH')) !== 0,
    relay: relay === 'plain' || relay === 'none' ? relay : 'hashed',
    secret: v.get('ZM_AUTH_HASH_SECRET') ?? '',
    hashIps: strtol(v.get('ZM_AUTH_HASH_IPS')) !== 0,
    hashTtl: v.has('ZM_AUTH_HASH_TTL') ? strtol(v.get('ZM_AUTH_HASH_TTL')) : 2,
    caseInsensitiveUsernames: strtol(v.get('ZM_CASE_INSENSITIVE_USERNAMES')) !== 0,
  };
}

/** What an operator should hear about these options (never the secret itself). */
export function optionWarnings(o: ZmOptions, trustRelayNone: boolean): string[] {
  const w: string[] = [];
  if (!o.useAuth) w.push('ZoneMinder has ZM_OPT_USE_AUTH off: every client may watch every monitor, as with zms');
  if (o.useAuth && o.secret === '') w.push('ZM_AUTH_HASH_SECRET is empty: tokens and auth= hashes are refused');
  if (o.useAuth && o.secret === ZM_DEFAULT_SECRET) w.push('ZM_AUTH_HASH_SECRET is the shipped default: tokens and auth= hashes are refused until it is changed');
  if (o.useAuth && o.hashTtl <= 0) w.push('ZM_AUTH_HASH_TTL is 0: treated as 2 hours, as zms does');
  if (o.useAuth && o.relay === 'none') {
    w.push(trustRelayNone
      ? 'ZM_AUTH_RELAY is none and auth.trustRelayNone is on: a bare user= logs in without a password'
      : 'ZM_AUTH_RELAY is none: bare user= logins are refused (set auth.trustRelayNone only behind a proxy that authenticates)');
  }
  return w;
}
