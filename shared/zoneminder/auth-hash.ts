/**
 * ZoneMinder's legacy `auth=` hash: lowercase hex MD5 of
 *   ZM_AUTH_HASH_SECRET . Username . stored Password hash . remoteAddr . hour . mday . mon . year
 * with the time fields in the ZoneMinder server's local time, undecorated
 * decimals, `mon` 0-based and `year` counted from 1900 (C `struct tm`).
 *
 * The validator tries the current hour, then steps back one hour at a time,
 * ZM_AUTH_HASH_TTL times in all. A TTL of 0 is treated as 2, as zms does
 * (PHP would accept nothing): zms is the streaming server zmcast stands in
 * for, and PHP still hands out hashes that zms accepts.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export interface TmFields {
  hour: number;
  mday: number;
  /** 0–11 */
  mon: number;
  /** years since 1900 */
  year: number;
}

/** Upper bound on hours tried, so a huge configured TTL cannot turn one request into a CPU sink. */
export const MAX_HASH_TTL_HOURS = 24 * 31;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Throws a RangeError for a zone the runtime does not know, which config validation uses. */
export function checkTimeZone(timeZone: string): void {
  formatter(timeZone);
}

interface LocalClock extends TmFields {
  minute: number;
  second: number;
}

/** `localtime_r` of the ZoneMinder server: the process zone, or an IANA zone when edges run elsewhere (containers in UTC). */
function localClock(epochMs: number, timeZone?: string): LocalClock {
  if (!timeZone) {
    const d = new Date(epochMs);
    return { hour: d.getHours(), mday: d.getDate(), mon: d.getMonth(), year: d.getFullYear() - 1900, minute: d.getMinutes(), second: d.getSeconds() };
  }
  const parts: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(epochMs))) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  return { hour: parts.hour, mday: parts.day, mon: parts.month - 1, year: parts.year - 1900, minute: parts.minute, second: parts.second };
}

export function tmFields(epochMs: number, timeZone?: string): TmFields {
  const { hour, mday, mon, year } = localClock(epochMs, timeZone);
  return { hour, mday, mon, year };
}

export function zmAuthHash(secret: string, username: string, storedPassword: string, remoteAddr: string, t: TmFields): string {
  return md5Hex(hashPrefix(secret, username, storedPassword, remoteAddr) + hashSuffix(t));
}

/** What is hashed, in two parts: the user's (fixed over the window) and the hour's. */
function hashPrefix(secret: string, username: string, storedPassword: string, remoteAddr: string): string {
  return `${secret}${username}${storedPassword}${remoteAddr}`;
}

function hashSuffix(t: TmFields): string {
  return `${t.hour}${t.mday}${t.mon}${t.year}`;
}

function md5Hex(text: string): string {
  return createHash('md5').update(text, 'utf8').digest('hex');
}

/** Hours the validator tries (the C++ rule). */
export function effectiveHashTtl(ttl: number): number {
  if (!Number.isFinite(ttl) || ttl <= 0) return 2;
  return Math.min(Math.floor(ttl), MAX_HASH_TTL_HOURS);
}

export interface HashCandidate {
  username: string;
  password: string;
}

export interface HashMatch<C extends HashCandidate> {
  candidate: C;
  hoursBack: number;
  /** The hash stops matching when its hour leaves the window: the start of that hour plus TTL hours. */
  expiresAt: number;
}

export interface HashCheckOptions {
  secret: string;
  remoteAddr: string;
  ttlHours: number;
  now: number;
  timeZone?: string;
}

/**
 * Finds [candidate, hour] with md5(prefixes[candidate] + suffixes[hour]) equal
 * to `presented`, trying each candidate's hours in order, or null. The check
 * pool runs the same loop in a worker thread (check-pool.ts) when the work is
 * large: a hash without a user name is tried against every enabled user.
 * `client` is the address the check is for (the pool takes clients in turn).
 */
export type HashFinder = (presented: string, prefixes: readonly string[], suffixes: readonly string[], client?: string) => Promise<[number, number] | null>;

/** MD5s beyond which a check leaves the event loop: about a millisecond of work. */
const INLINE_HASHES = 1000;

async function findHashHere(presented: string, prefixes: readonly string[], suffixes: readonly string[]): Promise<[number, number] | null> {
  const want = Buffer.from(presented, 'latin1');
  for (let c = 0; c < prefixes.length; c++) {
    for (let h = 0; h < suffixes.length; h++) {
      if (timingSafeEqual(Buffer.from(md5Hex(prefixes[c] + suffixes[h]), 'latin1'), want)) return [c, h];
    }
  }
  return null;
}

/**
 * zmLoadAuthUser: each candidate, each hour of the window; the first match
 * wins. Up to INLINE_HASHES MD5s run here, more through `offLoop`.
 */
export async function matchAuthHash<C extends HashCandidate>(
  hash: string, candidates: readonly C[], o: HashCheckOptions, offLoop: HashFinder = findHashHere,
): Promise<HashMatch<C> | null> {
  if (Buffer.byteLength(hash, 'latin1') !== 32) return null;
  const hours = effectiveHashTtl(o.ttlHours);
  const clocks = Array.from({ length: hours }, (_, i) => localClock(o.now - i * 3_600_000, o.timeZone));
  const prefixes = candidates.map((c) => hashPrefix(o.secret, c.username, c.password, o.remoteAddr));
  const suffixes = clocks.map(hashSuffix);
  const find = prefixes.length * suffixes.length > INLINE_HASHES ? offLoop : findHashHere;
  const found = await find(hash, prefixes, suffixes);
  if (!found) return null;
  const [c, i] = found;
  const at = o.now - i * 3_600_000;
  const hourStart = at - (clocks[i].minute * 60 + clocks[i].second) * 1000 - (((at % 1000) + 1000) % 1000);
  return { candidate: candidates[c], hoursBack: i, expiresAt: hourStart + hours * 3_600_000 };
}
