/**
 * Files that hold secrets (the config file with auth.secret and password
 * hashes, zm.conf with the database password, the TLS key) should be
 * readable by the service alone. Said once per read as a warning, not a
 * refusal: an operator may mean it (ZoneMinder itself ships zm.conf readable
 * by the web server's group).
 */
import { statSync } from 'node:fs';
import { logger } from '../log.js';

const log = logger('secrets');

/** Warns when `path` is readable by other users (`others`), or by its group too (`group`). */
export function warnIfExposed(path: string, what: string, tolerate: 'none' | 'group' = 'none'): void {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch {
    return; // reading it reports what is wrong
  }
  const exposed = mode & (tolerate === 'group' ? 0o004 : 0o044);
  if (!exposed) return;
  log.warn(`${what} is readable by ${mode & 0o004 ? 'every user on this machine' : 'its group'}: restrict it (chmod ${tolerate === 'group' ? '640' : '600'})`, {
    path, mode: (mode & 0o777).toString(8),
  });
}
