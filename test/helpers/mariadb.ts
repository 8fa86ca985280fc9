/**
 * A throwaway MariaDB/MySQL database per test file, `zmcast_test_<random>`,
 * with the ZoneMinder tables auth and capture read: same names, columns,
 * types and enums as ZoneMinder's db/zm_create.sql.in (1.37.78+, with roles).
 * The server comes from TEST_MYSQL_URL (mysql://user:pass@host:port/), else
 * root without a password on 127.0.0.1:3306. If none answers the tests fail
 * loudly: they never skip.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection, createPool, type Pool } from 'mysql2/promise';
import type { ZmDbSettings } from '../../shared/zoneminder/conf.js';

/** Column lists follow zm_create.sql.in; Monitors keeps the identity, placement, mode and source columns. */
export const ZM_SCHEMA = [
  `CREATE TABLE \`Config\` (
    \`Id\` smallint(5) unsigned NOT NULL default '0',
    \`Name\` varchar(32) NOT NULL default '',
    \`Value\` text NOT NULL,
    \`Type\` tinytext NOT NULL,
    \`DefaultValue\` text,
    \`Hint\` tinytext,
    \`Pattern\` tinytext,
    \`Format\` tinytext,
    \`Prompt\` tinytext,
    \`Help\` text,
    \`Category\` varchar(32) NOT NULL default '',
    \`Readonly\` tinyint(3) unsigned NOT NULL default '0',
    \`Private\` BOOLEAN NOT NULL DEFAULT FALSE,
    \`System\` BOOLEAN NOT NULL DEFAULT FALSE,
    \`Requires\` text,
    PRIMARY KEY (\`Name\`)
  ) ENGINE=InnoDB`,
  `CREATE TABLE \`Servers\` (
    \`Id\` int(10) unsigned NOT NULL auto_increment,
    \`Protocol\` TEXT,
    \`Hostname\` TEXT,
    \`Port\` INTEGER UNSIGNED,
    \`PathToIndex\` TEXT,
    \`PathToZMS\` TEXT,
    \`PathToApi\` TEXT,
    \`Name\` varchar(64) NOT NULL default '',
    \`State_Id\` int(10) unsigned,
    \`Status\` enum('Unknown','NotRunning','Running') NOT NULL default 'Unknown',
    \`CpuLoad\` DECIMAL(5,1) default NULL,
    \`TotalMem\` bigint unsigned default null,
    \`FreeMem\` bigint unsigned default null,
    \`TotalSwap\` bigint unsigned default null,
    \`FreeSwap\` bigint unsigned default null,
    \`zmstats\` BOOLEAN NOT NULL DEFAULT FALSE,
    \`zmaudit\` BOOLEAN NOT NULL DEFAULT FALSE,
    \`zmtrigger\` BOOLEAN NOT NULL DEFAULT FALSE,
    \`zmeventnotification\` BOOLEAN NOT NULL DEFAULT FALSE,
    \`Latitude\` DECIMAL(10,8),
    \`Longitude\` DECIMAL(11,8),
    PRIMARY KEY (\`Id\`)
  ) ENGINE=InnoDB`,
  'CREATE INDEX `Servers_Name_idx` ON `Servers` (`Name`)',
  `CREATE TABLE \`Monitors\` (
    \`Id\` int(10) unsigned NOT NULL auto_increment,
    \`Name\` varchar(64) NOT NULL default '',
    \`Deleted\` BOOLEAN NOT NULL default false,
    \`Notes\` TEXT,
    \`ServerId\` int(10) unsigned,
    \`StorageId\` smallint(5) unsigned default 0,
    \`Type\` enum('Local','Remote','File','Ffmpeg','Libvlc','cURL','WebSite','NVSocket','VNC') NOT NULL default 'Local',
    \`Function\` enum('None','Monitor','Modect','Record','Mocord','Nodect') NOT NULL default 'Monitor',
    \`Capturing\` enum('None','Ondemand','Always') NOT NULL default 'Always',
    \`Analysing\` enum('None','Always') NOT NULL default 'Always',
    \`Recording\` enum('None','OnMotion','Always') NOT NULL default 'Always',
    \`Enabled\` tinyint(3) unsigned NOT NULL default '1',
    \`DecodingEnabled\` tinyint(3) unsigned NOT NULL default '1',
    \`Decoding\` enum('None','Ondemand','KeyFrames','KeyFrames+Ondemand','Always') NOT NULL default 'Always',
    \`Device\` tinytext NOT NULL default '',
    \`Channel\` tinyint(3) unsigned NOT NULL default '0',
    \`Format\` int(10) unsigned NOT NULL default '0',
    \`Protocol\` varchar(16),
    \`Method\` varchar(16) default '',
    \`Host\` varchar(64),
    \`Port\` varchar(8) NOT NULL default '',
    \`SubPath\` varchar(64) NOT NULL default '',
    \`Path\` varchar(255),
    \`SecondPath\` varchar(255),
    \`Options\` varchar(255),
    \`User\` varchar(64),
    \`Pass\` varchar(64),
    \`Width\` smallint(5) unsigned NOT NULL default '0',
    \`Height\` smallint(5) unsigned NOT NULL default '0',
    \`Colours\` tinyint(3) unsigned NOT NULL default '1',
    \`Palette\` int(10) unsigned NOT NULL default '0',
    \`Orientation\` enum('ROTATE_0','ROTATE_90','ROTATE_180','ROTATE_270','FLIP_HORI','FLIP_VERT') NOT NULL default 'ROTATE_0',
    \`MaxFPS\` decimal(5,2) default NULL,
    \`AlarmMaxFPS\` decimal(5,2) default NULL,
    \`AnalysisFPSLimit\` decimal(5,2) default NULL,
    \`RTSPServer\` BOOLEAN NOT NULL DEFAULT FALSE,
    \`RTSPStreamName\` varchar(255) NOT NULL default '',
    \`Importance\` enum('Normal','Less','Not') NOT NULL default 'Normal',
    \`StartupDelay\` INT NOT NULL DEFAULT 0,
    PRIMARY KEY (\`Id\`)
  ) ENGINE=InnoDB`,
  'CREATE INDEX `Monitors_ServerId_idx` ON `Monitors` (`ServerId`)',
  `CREATE TABLE \`User_Roles\` (
    \`Id\` int(10) unsigned NOT NULL auto_increment,
    \`Name\` varchar(64) NOT NULL default '',
    \`Description\` text,
    \`Stream\` enum('None','View') NOT NULL default 'None',
    \`Events\` enum('None','View','Edit') NOT NULL default 'None',
    \`Control\` enum('None','View','Edit') NOT NULL default 'None',
    \`Monitors\` enum('None','View','Edit','Create') NOT NULL default 'None',
    \`Groups\` enum('None','View','Edit') NOT NULL default 'None',
    \`Devices\` enum('None','View','Edit') NOT NULL default 'None',
    \`Snapshots\` enum('None','View','Edit') NOT NULL default 'None',
    \`System\` enum('None','View','Edit') NOT NULL default 'None',
    PRIMARY KEY (\`Id\`),
    UNIQUE KEY \`UC_Name\` (\`Name\`)
  ) ENGINE=InnoDB`,
  `CREATE TABLE \`Users\` (
    \`Id\` int(10) unsigned NOT NULL auto_increment,
    \`Username\` varchar(64) character set latin1 collate latin1_bin NOT NULL default '',
    \`Password\` varchar(64) NOT NULL default '',
    \`Name\` varchar(64) NOT NULL default '',
    \`Email\` varchar(64) NOT NULL default '',
    \`Phone\` varchar(64) NOT NULL default '',
    \`Language\` varchar(8),
    \`Enabled\` tinyint(3) unsigned NOT NULL default '1',
    \`Stream\` enum('None','View') NOT NULL default 'None',
    \`Events\` enum('None','View','Edit') NOT NULL default 'None',
    \`Control\` enum('None','View','Edit') NOT NULL default 'None',
    \`Monitors\` enum('None','View','Edit','Create') NOT NULL default 'None',
    \`Groups\` enum('None','View','Edit') NOT NULL default 'None',
    \`Devices\` enum('None','View','Edit') NOT NULL default 'None',
    \`Snapshots\` enum('None','View','Edit') NOT NULL default 'None',
    \`System\` enum('None','View','Edit') NOT NULL default 'None',
    \`MaxBandwidth\` varchar(16),
    \`TokenMinExpiry\` BIGINT UNSIGNED NOT NULL DEFAULT 0,
    \`APIEnabled\` tinyint(3) UNSIGNED NOT NULL default 1,
    \`HomeView\` varchar(64) NOT NULL DEFAULT '',
    \`RoleId\` int(10) unsigned DEFAULT NULL,
    PRIMARY KEY (\`Id\`),
    UNIQUE KEY \`UC_Username\` (\`Username\`),
    FOREIGN KEY (\`RoleId\`) REFERENCES \`User_Roles\` (\`Id\`) ON DELETE SET NULL
  ) ENGINE=InnoDB`,
  'CREATE INDEX `Users_RoleId_idx` ON `Users` (`RoleId`)',
  `CREATE TABLE \`Groups\` (
    \`Id\` int(10) unsigned NOT NULL auto_increment,
    \`Name\` varchar(64) NOT NULL default '',
    \`ParentId\` int(10) unsigned,
    FOREIGN KEY (\`ParentId\`) REFERENCES \`Groups\` (\`Id\`) ON DELETE CASCADE,
    PRIMARY KEY (\`Id\`)
  ) ENGINE=InnoDB`,
  `CREATE TABLE \`Groups_Monitors\` (
    \`Id\` INT(10) unsigned NOT NULL auto_increment,
    \`GroupId\` int(10) unsigned NOT NULL,
    FOREIGN KEY (\`GroupId\`) REFERENCES \`Groups\` (\`Id\`) ON DELETE CASCADE,
    \`MonitorId\` int(10) unsigned NOT NULL,
    FOREIGN KEY (\`MonitorId\`) REFERENCES \`Monitors\` (\`Id\`) ON DELETE CASCADE,
    PRIMARY KEY (\`Id\`)
  ) ENGINE=InnoDB`,
  'CREATE INDEX `Groups_Monitors_GroupId_idx` ON `Groups_Monitors` (`GroupId`)',
  'CREATE INDEX `Groups_Monitors_MonitorId_idx` ON `Groups_Monitors` (`MonitorId`)',
  `CREATE TABLE \`Groups_Permissions\` (
    \`Id\` INT(10) unsigned NOT NULL auto_increment,
    \`GroupId\` int(10) unsigned NOT NULL,
    FOREIGN KEY (\`GroupId\`) REFERENCES \`Groups\` (\`Id\`) ON DELETE CASCADE,
    \`UserId\` int(10) unsigned NOT NULL,
    FOREIGN KEY (\`UserId\`) REFERENCES \`Users\` (\`Id\`) ON DELETE CASCADE,
    \`Permission\` enum('Inherit','None','View','Edit') NOT NULL default 'Inherit',
    PRIMARY KEY (\`Id\`)
  ) ENGINE=InnoDB`,
  'CREATE UNIQUE INDEX `Groups_Permissions_GroupId_UserId_idx` ON `Groups_Permissions` (`GroupId`,`UserId`)',
  'CREATE INDEX `Groups_Permissions_UserId_idx` ON `Groups_Permissions` (`UserId`)',
  `CREATE TABLE \`Monitors_Permissions\` (
    \`Id\` INT(10) unsigned NOT NULL auto_increment,
    \`MonitorId\` int(10) unsigned NOT NULL,
    FOREIGN KEY (\`MonitorId\`) REFERENCES \`Monitors\` (\`Id\`) ON DELETE CASCADE,
    \`UserId\` int(10) unsigned NOT NULL,
    FOREIGN KEY (\`UserId\`) REFERENCES \`Users\` (\`Id\`) ON DELETE CASCADE,
    \`Permission\` enum('Inherit','None','View','Edit') NOT NULL default 'Inherit',
    PRIMARY KEY (\`Id\`)
  ) ENGINE=InnoDB`,
  'CREATE UNIQUE INDEX `Monitors_Permissions_MonitorId_UserId_idx` ON `Monitors_Permissions` (`MonitorId`,`UserId`)',
  'CREATE INDEX `Monitors_Permissions_UserId_idx` ON `Monitors_Permissions` (`UserId`)',
  `CREATE TABLE \`Role_Groups_Permissions\` (
    \`Id\` INT(10) unsigned NOT NULL auto_increment,
    \`RoleId\` int(10) unsigned NOT NULL,
    \`GroupId\` int(10) unsigned NOT NULL,
    \`Permission\` enum('Inherit','None','View','Edit') NOT NULL default 'Inherit',
    PRIMARY KEY (\`Id\`),
    UNIQUE KEY \`Role_Groups_Permissions_RoleId_GroupId_idx\` (\`RoleId\`,\`GroupId\`),
    FOREIGN KEY (\`RoleId\`) REFERENCES \`User_Roles\` (\`Id\`) ON DELETE CASCADE,
    FOREIGN KEY (\`GroupId\`) REFERENCES \`Groups\` (\`Id\`) ON DELETE CASCADE
  ) ENGINE=InnoDB`,
  `CREATE TABLE \`Role_Monitors_Permissions\` (
    \`Id\` INT(10) unsigned NOT NULL auto_increment,
    \`RoleId\` int(10) unsigned NOT NULL,
    \`MonitorId\` int(10) unsigned NOT NULL,
    \`Permission\` enum('Inherit','None','View','Edit') NOT NULL default 'Inherit',
    PRIMARY KEY (\`Id\`),
    UNIQUE KEY \`Role_Monitors_Permissions_RoleId_MonitorId_idx\` (\`RoleId\`,\`MonitorId\`),
    FOREIGN KEY (\`RoleId\`) REFERENCES \`User_Roles\` (\`Id\`) ON DELETE CASCADE,
    FOREIGN KEY (\`MonitorId\`) REFERENCES \`Monitors\` (\`Id\`) ON DELETE CASCADE
  ) ENGINE=InnoDB`,
];

export interface TestDatabase {
  name: string;
  /** Settings for ZmDatabase.connect (as zm.conf would give them). */
  settings: ZmDbSettings;
  /** A privileged pool on this database, for seeding and changing rows mid-test. */
  sql: Pool;
  drop(): Promise<void>;
}

interface Server {
  host: string;
  port: number;
  user: string;
  password: string;
  shown: string;
}

function server(): Server {
  const raw = process.env.TEST_MYSQL_URL || 'mysql://root@127.0.0.1:3306/';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`TEST_MYSQL_URL is not a URL (expected mysql://user:pass@host:port/)`);
  }
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : 3306,
    user: decodeURIComponent(url.username) || 'root',
    password: decodeURIComponent(url.password),
    shown: `${url.protocol}//${url.username ? `${decodeURIComponent(url.username)}@` : ''}${url.host}`,
  };
}

/** Creates `zmcast_test_<random>` with the ZoneMinder schema; `drop()` removes it. */
export async function createZmTestDatabase(): Promise<TestDatabase> {
  const s = server();
  const name = `zmcast_test_${randomBytes(6).toString('hex')}`;
  let admin;
  try {
    admin = await createConnection({ host: s.host, port: s.port, user: s.user, password: s.password, connectTimeout: 5000 });
  } catch (err) {
    throw new Error(
      `Auth tests need MariaDB or MySQL and none answered at ${s.shown} (${(err as Error).message}). ` +
        'Set TEST_MYSQL_URL=mysql://user:pass@host:port/ or start the local server ' +
        '(start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd).',
    );
  }
  try {
    await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
  } finally {
    await admin.end();
  }
  const sql = createPool({ host: s.host, port: s.port, user: s.user, password: s.password, database: name, connectionLimit: 2, charset: 'utf8mb4' });
  for (const statement of ZM_SCHEMA) await sql.query(statement);
  return {
    name,
    settings: { host: s.host, port: s.port, user: s.user, password: s.password, database: name },
    sql,
    drop: async () => {
      await sql.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await sql.end();
    },
  };
}

/**
 * A zm.conf, as a ZoneMinder host has it, pointing at the test database; with
 * `serverName`, a conf.d/ file naming this server too. Returns the zm.conf path.
 */
export function writeZmConf(db: TestDatabase, serverName?: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'zmcast-zmconf-'));
  const s = db.settings;
  writeFileSync(join(dir, 'zm.conf'), [
    '# ZoneMinder configuration file',
    'ZM_PATH_ZMS=/cgi-bin/nph-zms',
    `ZM_DB_HOST=${s.host}:${s.port}`,
    `ZM_DB_NAME=${s.database}`,
    `ZM_DB_USER=${s.user}`,
    `ZM_DB_PASS=${s.password}`,
    '',
  ].join('\n'));
  if (serverName) {
    mkdirSync(join(dir, 'conf.d'));
    writeFileSync(join(dir, 'conf.d', '02-multiserver.conf'), `ZM_SERVER_NAME=${serverName}\n`);
  }
  return join(dir, 'zm.conf');
}
