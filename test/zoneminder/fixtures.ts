/**
 * ZoneMinder, as the tests need to imitate it: rows written the way its web
 * UI writes them, tokens encoded the way firebase/php-jwt v5 encodes them
 * (HostController::login), and auth hashes built from the recipe with the
 * process's local time, independently of the code under test.
 */
import { createHash, createHmac } from 'node:crypto';
import bcrypt from 'bcryptjs';
import type { ResultSetHeader } from 'mysql2/promise';
import { loadConfig, type AuthConfig } from '../../shared/config.js';
import type { TestDatabase } from '../helpers/mariadb.js';

/** PHP password_hash(PASSWORD_BCRYPT) writes `$2y$`; a low cost keeps the suite fast. */
export function zmBcrypt(plain: string, cost = 4): string {
  return bcrypt.hashSync(plain, cost).replace(/^\$2b\$/, '$2y$');
}

/** json_encode with its defaults: `/` escaped, non-ASCII as \uXXXX. */
export function phpJsonEncode(value: unknown): string {
  return JSON.stringify(value)
    .replace(/\//g, '\\/')
    .replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/** firebase/php-jwt v5 JWT::encode($payload, $key, 'HS256'). */
export function phpJwtEncode(payload: Record<string, unknown>, key: string, header: Record<string, unknown> = { typ: 'JWT', alg: 'HS256' }): string {
  const signingInput = `${b64url(phpJsonEncode(header))}.${b64url(phpJsonEncode(payload))}`;
  const alg = header.alg;
  const sig = alg === 'none' ? Buffer.alloc(0) : createHmac(alg === 'HS512' ? 'sha512' : 'sha256', key).update(signingInput).digest();
  return `${signingInput}.${b64url(sig)}`;
}

/** HostController::login: claims iss, iat, exp, user, type in that order; access TTL = max(ZM_AUTH_HASH_TTL,1)*3600, refresh 24 h. */
export function zmToken(secret: string, user: string, o: { now?: number; type?: 'access' | 'refresh'; ttlHours?: number } = {}): string {
  const iat = Math.floor((o.now ?? Date.now()) / 1000);
  const type = o.type ?? 'access';
  const ttl = type === 'refresh' ? 24 * 3600 : Math.max(o.ttlHours ?? 2, 1) * 3600;
  return phpJwtEncode({ iss: 'ZoneMinder', iat, exp: iat + ttl, user, type }, secret);
}

/** calculateAuthHash: md5(secret . username . password-hash . remoteAddr . hour . mday . mon . year), PHP localtime(). */
export function zmAuthHashAt(secret: string, username: string, storedPassword: string, remoteAddr: string, at: Date): string {
  const fields = `${at.getHours()}${at.getDate()}${at.getMonth()}${at.getFullYear() - 1900}`;
  return createHash('md5').update(secret + username + storedPassword + remoteAddr + fields).digest('hex');
}

export const SECRET = 'a-real-secret-for-tests-0123456789';

export interface UserRow {
  username: string;
  /** Stored Password column as is; default: bcrypt of `plain`. */
  password?: string;
  plain?: string;
  enabled?: 0 | 1;
  stream?: 'None' | 'View';
  monitors?: 'None' | 'View' | 'Edit' | 'Create';
  roleId?: number | null;
  tokenMinExpiry?: number;
}

export class ZmFixture {
  private configId = 1;

  constructor(readonly db: TestDatabase) {}

  /** Config rows as ConfigData.pm stores them: booleans '1'/'0', integers as decimal strings. */
  async setOptions(options: Record<string, string>): Promise<void> {
    for (const [name, value] of Object.entries(options)) {
      await this.db.sql.execute(
        `INSERT INTO Config (Id, Name, Value, Type, Category) VALUES (?, ?, ?, 'string', 'auth')
         ON DUPLICATE KEY UPDATE Value = VALUES(Value)`,
        [this.configId++, name, value],
      );
    }
  }

  async standardOptions(extra: Record<string, string> = {}): Promise<void> {
    await this.setOptions({
      ZM_OPT_USE_AUTH: '1',
      ZM_AUTH_TYPE: 'builtin',
      ZM_AUTH_RELAY: 'hashed',
      ZM_AUTH_HASH_SECRET: SECRET,
      ZM_AUTH_HASH_IPS: '0',
      ZM_AUTH_HASH_TTL: '2',
      ZM_CASE_INSENSITIVE_USERNAMES: '0',
      ...extra,
    });
  }

  async addUser(u: UserRow): Promise<number> {
    const password = u.password ?? zmBcrypt(u.plain ?? 'secret');
    const [r] = await this.db.sql.execute<ResultSetHeader>(
      `INSERT INTO Users (Username, Password, Enabled, Stream, Events, Control, Monitors, System, TokenMinExpiry, RoleId)
       VALUES (?, ?, ?, ?, 'View', 'None', ?, 'None', ?, ?)`,
      [u.username, password, u.enabled ?? 1, u.stream ?? 'View', u.monitors ?? 'View', u.tokenMinExpiry ?? 0, u.roleId ?? null],
    );
    return r.insertId;
  }

  async setUser(id: number, column: 'Enabled' | 'TokenMinExpiry' | 'Password' | 'Stream' | 'Monitors' | 'RoleId' | 'Username', value: string | number | null): Promise<void> {
    await this.db.sql.execute(`UPDATE Users SET \`${column}\` = ? WHERE Id = ?`, [value, id]);
  }

  async addMonitor(m: { name: string; id?: number; capturing?: string; deleted?: 0 | 1; type?: string; serverId?: number | null; path?: string; user?: string; pass?: string; method?: string; options?: string }): Promise<number> {
    const [r] = await this.db.sql.execute<ResultSetHeader>(
      `INSERT INTO Monitors (Id, Name, Capturing, Deleted, Type, ServerId, Path, User, Pass, Method, Options) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [m.id ?? null, m.name, m.capturing ?? 'Always', m.deleted ?? 0, m.type ?? 'Ffmpeg', m.serverId ?? null, m.path ?? 'synthetic:', m.user ?? null, m.pass ?? null, m.method ?? '', m.options ?? null],
    );
    return r.insertId;
  }

  async addGroup(name: string, parentId: number | null = null): Promise<number> {
    const [r] = await this.db.sql.execute<ResultSetHeader>('INSERT INTO `Groups` (Name, ParentId) VALUES (?, ?)', [name, parentId]);
    return r.insertId;
  }

  async addToGroup(groupId: number, monitorId: number): Promise<void> {
    await this.db.sql.execute('INSERT INTO Groups_Monitors (GroupId, MonitorId) VALUES (?, ?)', [groupId, monitorId]);
  }

  async grantMonitor(userId: number, monitorId: number, permission: string): Promise<void> {
    await this.db.sql.execute(
      'INSERT INTO Monitors_Permissions (MonitorId, UserId, Permission) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE Permission = VALUES(Permission)',
      [monitorId, userId, permission],
    );
  }

  async grantGroup(userId: number, groupId: number, permission: string): Promise<void> {
    await this.db.sql.execute(
      'INSERT INTO Groups_Permissions (GroupId, UserId, Permission) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE Permission = VALUES(Permission)',
      [groupId, userId, permission],
    );
  }

  async addRole(r: { name: string; stream?: string; monitors?: string }): Promise<number> {
    const [res] = await this.db.sql.execute<ResultSetHeader>(
      'INSERT INTO User_Roles (Name, Stream, Monitors) VALUES (?, ?, ?)',
      [r.name, r.stream ?? 'None', r.monitors ?? 'None'],
    );
    return res.insertId;
  }

  async roleGrantMonitor(roleId: number, monitorId: number, permission: string): Promise<void> {
    await this.db.sql.execute('INSERT INTO Role_Monitors_Permissions (RoleId, MonitorId, Permission) VALUES (?, ?, ?)', [roleId, monitorId, permission]);
  }

  async roleGrantGroup(roleId: number, groupId: number, permission: string): Promise<void> {
    await this.db.sql.execute('INSERT INTO Role_Groups_Permissions (RoleId, GroupId, Permission) VALUES (?, ?, ?)', [roleId, groupId, permission]);
  }
}

/** An auth section as loadConfig builds it, ignoring this process's environment. */
export function authConfig(overrides: Partial<AuthConfig>): AuthConfig {
  return loadConfig({ env: {}, overrides: { auth: overrides } }).auth;
}

/** A clock the tests move by hand. */
export class TestClock {
  constructor(public t: number = Date.now()) {}
  readonly now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}
