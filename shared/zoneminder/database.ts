/**
 * Read-only access to a ZoneMinder database: Config options, users, their
 * roles and per-object permissions, groups, monitors and servers. Every
 * statement is a prepared statement with `?` parameters; user input never
 * becomes SQL text.
 */
import { createPool, type Pool, type PoolOptions, type RowDataPacket } from 'mysql2/promise';
import type { ZmDbSettings } from './conf.js';
import { ZM_OPTION_NAMES, parseZmOptions, type ZmOptions } from './options.js';
import {
  groupMonitorIds, withRoleFallback,
  type AccessRules, type GroupGrant, type MonitorsLevel, type ObjectPermission, type PermissionSet, type StreamLevel,
} from './permissions.js';

const QUERY_TIMEOUT_MS = 5000;

export interface ZmUser {
  id: number;
  username: string;
  /** The stored hash string (bcrypt, `*`SHA1, `-ZM-`…). Never logged. */
  password: string;
  enabled: boolean;
  stream: StreamLevel;
  monitors: MonitorsLevel;
  /** Seconds since the epoch; tokens issued before it are revoked. */
  tokenMinExpiry: number;
  roleId: number | null;
}

export interface ZmMonitorRow {
  id: number;
  name: string;
  type: string;
  capturing: string;
  deleted: boolean;
  serverId: number | null;
  path: string;
  /** The sub-stream's URL; '' when none (or on a schema before 1.35.20, which has no SecondPath). */
  secondPath: string;
  user: string;
  pass: string;
  method: string;
  options: string;
}

export interface ZmSchema {
  /** User_Roles and Users.RoleId exist (ZoneMinder 1.37.78+). */
  roles: boolean;
}

export class ZmSchemaError extends Error {
  readonly code = 'zm_schema';
}

const USER_COLUMNS = 'Id, Username, Password, Enabled, Stream, Monitors, TokenMinExpiry';

export class ZmDatabase {
  private schema: Promise<ZmSchema> | undefined;
  private closing: Promise<void> | undefined;
  private groupsInFlight: ReturnType<ZmDatabase['groupTree']> | undefined;
  private hasSecondPath: Promise<boolean> | undefined;

  constructor(private readonly pool: Pool) {}

  static connect(settings: ZmDbSettings, extra: Partial<PoolOptions> = {}): ZmDatabase {
    return new ZmDatabase(createPool({
      host: settings.host,
      port: settings.port,
      socketPath: settings.socketPath,
      user: settings.user,
      password: settings.password,
      database: settings.database,
      charset: 'utf8mb4',
      supportBigNumbers: true,
      bigNumberStrings: false,
      connectionLimit: 4,
      maxIdle: 2,
      idleTimeout: 60_000,
      connectTimeout: 5000,
      enableKeepAlive: true,
      ...extra,
    }));
  }

  close(): Promise<void> {
    this.closing ??= this.pool.end();
    return this.closing;
  }

  /** Which optional tables exist; refuses a schema older than Monitors_Permissions (1.37.27). */
  detectSchema(): Promise<ZmSchema> {
    this.schema ??= (async () => {
      const tables = await this.rows(
        `SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()
           AND TABLE_NAME IN ('Users', 'Config', 'Monitors_Permissions', 'Groups_Permissions', 'User_Roles', 'Role_Monitors_Permissions', 'Role_Groups_Permissions')`,
        [],
      );
      const have = new Set(tables.map((r) => String(r.t)));
      for (const t of ['Users', 'Config', 'Monitors_Permissions', 'Groups_Permissions']) {
        if (!have.has(t)) throw new ZmSchemaError(`ZoneMinder table ${t} not found: zmcast needs ZoneMinder 1.37.27 or later`);
      }
      const roleCol = await this.rows(
        `SELECT 1 AS x FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'Users' AND COLUMN_NAME = 'RoleId'`,
        [],
      );
      const roles = roleCol.length > 0 && have.has('User_Roles') && have.has('Role_Monitors_Permissions') && have.has('Role_Groups_Permissions');
      return { roles };
    })().catch((err) => {
      this.schema = undefined;
      throw err;
    });
    return this.schema;
  }

  async options(): Promise<ZmOptions> {
    const rows = await this.rows(
      `SELECT Name, Value FROM Config WHERE Name IN (${ZM_OPTION_NAMES.map(() => '?').join(', ')})`,
      [...ZM_OPTION_NAMES],
    );
    return parseZmOptions(rows.map((r) => ({ Name: String(r.Name), Value: r.Value === null ? null : String(r.Value) })));
  }

  /**
   * Users whose name matches, enabled or not. The SQL comparison runs in
   * utf8mb4 (a latin1 column against a non-latin1 name is otherwise an SQL
   * error) and is then repeated exactly in JavaScript, because MariaDB
   * collations ignore trailing spaces and `_ci` ones also fold accents.
   */
  async usersByName(name: string, caseInsensitive: boolean): Promise<ZmUser[]> {
    const schema = await this.detectSchema();
    const sql = caseInsensitive
      ? `SELECT ${userColumns(schema)} FROM Users WHERE LOWER(CONVERT(Username USING utf8mb4)) = LOWER(?)`
      : `SELECT ${userColumns(schema)} FROM Users WHERE CONVERT(Username USING utf8mb4) COLLATE utf8mb4_bin = ?`;
    const rows = (await this.rows(sql, [name])).map(toUser);
    const folded = name.toLowerCase();
    return rows.filter((u) => (caseInsensitive ? u.username.toLowerCase() === folded : u.username === name));
  }

  async userById(id: number): Promise<ZmUser | null> {
    const schema = await this.detectSchema();
    const rows = await this.rows(`SELECT ${userColumns(schema)} FROM Users WHERE Id = ?`, [id]);
    return rows.length ? toUser(rows[0]) : null;
  }

  /** For an `auth=` hash without a user name, which zms checks against every enabled user. */
  async enabledUsers(): Promise<ZmUser[]> {
    const schema = await this.detectSchema();
    return (await this.rows(`SELECT ${userColumns(schema)} FROM Users WHERE Enabled = 1 ORDER BY Id`, [])).map(toUser);
  }

  /** The `$2y$NN$` prefixes of the stored bcrypt hashes: the costs in use, and nothing of the hashes themselves. */
  async bcryptPrefixes(): Promise<string[]> {
    const rows = await this.rows(`SELECT DISTINCT LEFT(Password, 7) AS p FROM Users WHERE Password LIKE ?`, ['$2%']);
    return rows.map((r) => String(r.p));
  }

  /** Everything `canView` needs for one user, read in parallel. */
  async accessRules(user: ZmUser): Promise<AccessRules> {
    const schema = await this.detectSchema();
    const roleId = schema.roles ? user.roleId : null;
    const [roleRows, userMonitors, userGroups, roleMonitors, roleGroups] = await Promise.all([
      roleId === null ? [] : this.rows('SELECT Stream, Monitors FROM User_Roles WHERE Id = ?', [roleId]),
      this.rows('SELECT MonitorId, Permission FROM Monitors_Permissions WHERE UserId = ? ORDER BY Id', [user.id]),
      this.rows('SELECT GroupId, Permission FROM Groups_Permissions WHERE UserId = ? ORDER BY Id', [user.id]),
      roleId === null ? [] : this.rows('SELECT MonitorId, Permission FROM Role_Monitors_Permissions WHERE RoleId = ? ORDER BY Id', [roleId]),
      roleId === null ? [] : this.rows('SELECT GroupId, Permission FROM Role_Groups_Permissions WHERE RoleId = ? ORDER BY Id', [roleId]),
    ]);
    const role = roleRows[0];
    const groupIds = [...userGroups, ...roleGroups].map((r) => Number(r.GroupId));
    let members = new Map<number, Set<number>>();
    if (groupIds.length) {
      const { groups, links } = await this.groupTree();
      members = groupMonitorIds(groups, links, groupIds);
    }
    const set = (monitors: RowDataPacket[], groups: RowDataPacket[]): PermissionSet => ({
      monitors: new Map(monitors.map((r) => [Number(r.MonitorId), String(r.Permission) as ObjectPermission])),
      groups: groups.map((r): GroupGrant => ({
        groupId: Number(r.GroupId),
        permission: String(r.Permission) as ObjectPermission,
        monitorIds: members.get(Number(r.GroupId)) ?? new Set(),
      })),
    });
    return {
      stream: withRoleFallback(user.stream, role ? (String(role.Stream) as StreamLevel) : undefined),
      monitorsLevel: withRoleFallback(user.monitors, role ? (String(role.Monitors) as MonitorsLevel) : undefined),
      user: set(userMonitors, userGroups),
      role: role ? set(roleMonitors, roleGroups) : null,
    };
  }

  /** All groups and memberships; overlapping callers share one read. */
  private groupTree(): Promise<{ groups: { id: number; parentId: number | null }[]; links: { groupId: number; monitorId: number }[] }> {
    this.groupsInFlight ??= (async () => {
      const [groups, links] = await Promise.all([
        this.rows('SELECT Id, ParentId FROM `Groups`', []),
        this.rows('SELECT GroupId, MonitorId FROM Groups_Monitors', []),
      ]);
      return {
        groups: groups.map((g) => ({ id: Number(g.Id), parentId: g.ParentId === null ? null : Number(g.ParentId) })),
        links: links.map((l) => ({ groupId: Number(l.GroupId), monitorId: Number(l.MonitorId) })),
      };
    })().finally(() => { this.groupsInFlight = undefined; });
    return this.groupsInFlight;
  }

  /** Monitors that exist (Deleted = 0), for names and the directory. */
  async monitors(): Promise<{ id: number; name: string }[]> {
    const rows = await this.rows('SELECT Id, Name FROM Monitors WHERE Deleted = 0 ORDER BY Id', []);
    return rows.map((r) => ({ id: Number(r.Id), name: String(r.Name) }));
  }

  /**
   * The monitors zmc/zmpkg would capture on this server: Capturing != 'None',
   * Deleted = 0, Type != 'WebSite', and ServerId = this server when one is set.
   */
  async captureMonitors(serverId: number | null): Promise<ZmMonitorRow[]> {
    this.hasSecondPath ??= this.rows(
      `SELECT 1 AS x FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'Monitors' AND COLUMN_NAME = 'SecondPath'`,
      [],
    ).then((r) => r.length > 0, (err: unknown) => {
      this.hasSecondPath = undefined;
      throw err;
    });
    const secondPath = (await this.hasSecondPath) ? 'SecondPath' : "'' AS SecondPath";
    const rows = await this.rows(
      `SELECT Id, Name, Type, Capturing, Deleted, ServerId, Path, ${secondPath}, User, Pass, Method, Options FROM Monitors
        WHERE Capturing != 'None' AND Deleted = 0 AND Type != 'WebSite'${serverId === null ? '' : ' AND ServerId = ?'}
        ORDER BY Id`,
      serverId === null ? [] : [serverId],
    );
    return rows.map((r) => ({
      id: Number(r.Id),
      name: String(r.Name),
      type: String(r.Type),
      capturing: String(r.Capturing),
      deleted: Boolean(Number(r.Deleted)),
      serverId: r.ServerId === null ? null : Number(r.ServerId),
      path: r.Path === null ? '' : String(r.Path),
      secondPath: r.SecondPath === null ? '' : String(r.SecondPath),
      user: r.User === null ? '' : String(r.User),
      pass: r.Pass === null ? '' : String(r.Pass),
      method: r.Method === null ? '' : String(r.Method),
      options: r.Options === null ? '' : String(r.Options),
    }));
  }

  /** ZM_SERVER_ID as is, or ZM_SERVER_NAME looked up in Servers; null for a single-server install. */
  async serverId(identity: { id?: number; name?: string }): Promise<number | null> {
    if (identity.id !== undefined) return identity.id;
    if (!identity.name) return null;
    const rows = await this.rows('SELECT Id FROM Servers WHERE Name = ?', [identity.name]);
    if (!rows.length) throw new ZmSchemaError(`ZM_SERVER_NAME ${JSON.stringify(identity.name)} is not in the Servers table`);
    return Number(rows[0].Id);
  }

  private async rows(sql: string, values: (string | number)[]): Promise<RowDataPacket[]> {
    const [rows] = await this.pool.execute<RowDataPacket[]>({ sql, timeout: QUERY_TIMEOUT_MS }, values);
    return rows;
  }
}

function userColumns(schema: ZmSchema): string {
  return schema.roles ? `${USER_COLUMNS}, RoleId` : `${USER_COLUMNS}, NULL AS RoleId`;
}

function toUser(r: RowDataPacket): ZmUser {
  const min = Number(r.TokenMinExpiry);
  return {
    id: Number(r.Id),
    username: String(r.Username),
    password: String(r.Password ?? ''),
    enabled: Number(r.Enabled) === 1,
    stream: String(r.Stream) as StreamLevel,
    monitors: String(r.Monitors) as MonitorsLevel,
    // A value beyond 2^53 cannot be an honest time: treat it as "revoke everything".
    tokenMinExpiry: Number.isSafeInteger(min) ? min : Number.POSITIVE_INFINITY,
    roleId: r.RoleId === null || r.RoleId === undefined ? null : Number(r.RoleId),
  };
}
