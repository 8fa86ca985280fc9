/**
 * ZoneMinder's own configuration files: `/etc/zm/zm.conf`, then every
 * `conf.d/*.conf` beside it in name order, later files overriding earlier
 * ones, exactly as zm_config.cpp reads them (`NAME=VALUE` lines, `#`
 * comments, whitespace trimmed, quotes kept as written). The process
 * environment overrides the files, so a container can pass ZM_DB_* alone.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { warnIfExposed } from '../auth/secret-files.js';

export const DEFAULT_ZM_CONF = '/etc/zm/zm.conf';

/** Where libmysqlclient looks when the host is `localhost`: ZoneMinder's default talks over this socket. */
const DEFAULT_SOCKETS = ['/run/mysqld/mysqld.sock', '/var/run/mysqld/mysqld.sock', '/tmp/mysql.sock'];

export class ZmConfError extends Error {
  readonly code = 'bad_zm_conf';
}

export function parseZmConf(text: string, into: Record<string, string> = {}): Record<string, string> {
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq < 1) continue;
    const name = line.slice(0, eq).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) continue;
    into[name] = line.slice(eq + 1).trim();
  }
  return into;
}

/**
 * Reads zm.conf and its conf.d. A missing file is not an error (the
 * environment may carry everything); an unreadable one is, with the reason.
 */
export function readZmConf(path: string = DEFAULT_ZM_CONF): Record<string, string> {
  const vars: Record<string, string> = {};
  const files: string[] = [];
  if (existsSync(path)) files.push(path);
  const dir = join(dirname(path), 'conf.d');
  if (existsSync(dir)) {
    try {
      for (const f of readdirSync(dir).filter((f) => f.endsWith('.conf')).sort()) files.push(join(dir, f));
    } catch (err) {
      throw new ZmConfError(`cannot list ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  for (const f of files) {
    // ZoneMinder's own layout (root:www-data 0640) is fine; readable by everyone is not.
    warnIfExposed(f, 'ZoneMinder configuration (holds ZM_DB_PASS)', 'group');
    try {
      parseZmConf(readFileSync(f, 'utf8'), vars);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new ZmConfError(
        `cannot read ${f} (${code ?? (err as Error).message})` +
          (code === 'EACCES' ? ': run zmcast in the web server group, or pass ZM_DB_HOST/ZM_DB_NAME/ZM_DB_USER/ZM_DB_PASS in the environment' : ''),
      );
    }
  }
  return vars;
}

export interface ZmDbSettings {
  host?: string;
  port?: number;
  socketPath?: string;
  database: string;
  user: string;
  password: string;
}

/** The ZM_* variables that matter: files first, the environment on top. */
export function zmVariables(env: NodeJS.ProcessEnv, confPath: string): Record<string, string> {
  const vars = readZmConf(confPath);
  for (const [k, v] of Object.entries(env)) {
    if (k.startsWith('ZM_') && v !== undefined && v !== '') vars[k] = v;
  }
  return vars;
}

/**
 * Connection settings from ZM_DB_HOST (`host`, `host:port`, `host:/socket`,
 * `/socket`, `[v6]:port`), ZM_DB_NAME, ZM_DB_USER, ZM_DB_PASS.
 */
export function zmDbSettings(vars: Record<string, string>, socketExists: (p: string) => boolean = existsSync): ZmDbSettings {
  if (!vars.ZM_DB_USER) {
    throw new ZmConfError('ZoneMinder database settings not found: set ZM_DB_HOST, ZM_DB_NAME, ZM_DB_USER and ZM_DB_PASS, or point auth.zmConf (--zm-conf) at zm.conf');
  }
  const out: ZmDbSettings = { database: vars.ZM_DB_NAME || 'zm', user: vars.ZM_DB_USER, password: vars.ZM_DB_PASS ?? '' };
  const host = (vars.ZM_DB_HOST || 'localhost').trim();
  let name = host;
  let rest: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(host);
  if (bracketed) {
    name = bracketed[1];
    rest = bracketed[2];
  } else if (host.startsWith('/')) {
    name = '';
    rest = host;
  } else {
    const colon = host.indexOf(':');
    if (colon >= 0) {
      name = host.slice(0, colon);
      rest = host.slice(colon + 1);
    }
  }
  if (rest !== undefined && rest !== '') {
    if (/^\d+$/.test(rest)) {
      const port = Number(rest);
      if (port < 1 || port > 65535) throw new ZmConfError(`ZM_DB_HOST has a bad port: ${rest}`);
      out.port = port;
    } else if (rest.startsWith('/')) {
      out.socketPath = rest;
    } else {
      throw new ZmConfError('ZM_DB_HOST must be host, host:port, host:/path/to/socket or /path/to/socket');
    }
  }
  if (!out.socketPath && out.port === undefined && (name === 'localhost' || name === '')) {
    const sock = DEFAULT_SOCKETS.find((p) => socketExists(p));
    if (sock) out.socketPath = sock;
  }
  if (!out.socketPath) out.host = name || 'localhost';
  return out;
}

/** This host's identity in a multi-server ZoneMinder: ZM_SERVER_ID, else ZM_SERVER_NAME (or its old alias ZM_SERVER_HOST). */
export function zmServerIdentity(vars: Record<string, string>): { id?: number; name?: string } {
  if (vars.ZM_SERVER_ID && /^\d+$/.test(vars.ZM_SERVER_ID)) return { id: Number(vars.ZM_SERVER_ID) };
  const name = vars.ZM_SERVER_NAME || vars.ZM_SERVER_HOST;
  return name ? { name } : {};
}
