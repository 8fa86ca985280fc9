import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseZmConf, readZmConf, zmDbSettings, zmServerIdentity, zmVariables } from '../../shared/zoneminder/conf.js';

const dir = mkdtempSync(join(tmpdir(), 'zmcast-zmconf-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ZM_CONF = `# ZoneMinder database hostname or ip address and optionally port or unix socket
ZM_DB_HOST=localhost
ZM_DB_NAME=zm
ZM_DB_USER=zmuser
ZM_DB_PASS=zmpass
  ZM_PATH_ZMS = /cgi-bin/nph-zms
not a setting
`;

describe('zm.conf', () => {
  it('parses NAME=VALUE lines, trims, skips comments, keeps quotes as written', () => {
    expect(parseZmConf(`${ZM_CONF}ZM_DB_PASS="quoted"\n`)).toEqual({
      ZM_DB_HOST: 'localhost', ZM_DB_NAME: 'zm', ZM_DB_USER: 'zmuser', ZM_DB_PASS: '"quoted"', ZM_PATH_ZMS: '/cgi-bin/nph-zms',
    });
  });

  it('reads conf.d/*.conf after zm.conf, in name order, later files winning', () => {
    const etc = join(dir, 'etc-zm');
    mkdirSync(join(etc, 'conf.d'), { recursive: true });
    writeFileSync(join(etc, 'zm.conf'), ZM_CONF);
    writeFileSync(join(etc, 'conf.d', '02-db.conf'), 'ZM_DB_HOST=db.internal:3307\nZM_DB_PASS=from-02\n');
    writeFileSync(join(etc, 'conf.d', '01-server.conf'), 'ZM_SERVER_NAME=edge-a\nZM_DB_PASS=from-01\n');
    writeFileSync(join(etc, 'conf.d', 'ignored.txt'), 'ZM_DB_PASS=never\n');
    const vars = readZmConf(join(etc, 'zm.conf'));
    expect(vars).toMatchObject({ ZM_DB_HOST: 'db.internal:3307', ZM_DB_PASS: 'from-02', ZM_SERVER_NAME: 'edge-a', ZM_DB_USER: 'zmuser' });
  });

  it('lets the environment override the files, and tolerates a missing zm.conf', () => {
    const vars = zmVariables({ ZM_DB_USER: 'envuser', ZM_DB_PASS: 'envpass', HOME: '/root' }, join(dir, 'nowhere', 'zm.conf'));
    expect(vars).toEqual({ ZM_DB_USER: 'envuser', ZM_DB_PASS: 'envpass' });
  });

  it('names the file and the reason when zm.conf exists but cannot be read', () => {
    const notAFile = join(dir, 'dir-not-file', 'zm.conf');
    mkdirSync(notAFile, { recursive: true });
    expect(() => readZmConf(notAFile)).toThrow(/cannot read .*zm\.conf \(EISDIR\)/);
  });
});

describe('ZM_DB_HOST', () => {
  const base = { ZM_DB_NAME: 'zm', ZM_DB_USER: 'zmuser', ZM_DB_PASS: 'zmpass' };
  const noSocket = () => false;

  it('takes host, host:port, host:/socket, /socket and [v6]:port', () => {
    expect(zmDbSettings({ ...base, ZM_DB_HOST: 'db.internal' }, noSocket)).toEqual({ host: 'db.internal', database: 'zm', user: 'zmuser', password: 'zmpass' });
    expect(zmDbSettings({ ...base, ZM_DB_HOST: 'db.internal:3307' }, noSocket)).toMatchObject({ host: 'db.internal', port: 3307 });
    expect(zmDbSettings({ ...base, ZM_DB_HOST: 'localhost:/run/mysqld/mysqld.sock' }, noSocket)).toMatchObject({ socketPath: '/run/mysqld/mysqld.sock' });
    expect(zmDbSettings({ ...base, ZM_DB_HOST: '/var/run/mysqld/mysqld.sock' }, noSocket)).toMatchObject({ socketPath: '/var/run/mysqld/mysqld.sock' });
    expect(zmDbSettings({ ...base, ZM_DB_HOST: '[::1]:3306' }, noSocket)).toMatchObject({ host: '::1', port: 3306 });
  });

  it('uses the local socket for plain localhost, as libmysqlclient does, when there is one', () => {
    const s = zmDbSettings({ ...base, ZM_DB_HOST: 'localhost' }, (p) => p === '/run/mysqld/mysqld.sock');
    expect(s).toMatchObject({ socketPath: '/run/mysqld/mysqld.sock' });
    expect(s.host).toBeUndefined();
    expect(zmDbSettings({ ...base, ZM_DB_HOST: 'localhost' }, noSocket)).toMatchObject({ host: 'localhost' });
  });

  it('refuses nonsense and a missing user, naming the variables', () => {
    expect(() => zmDbSettings({ ...base, ZM_DB_HOST: 'db:notaport' }, noSocket)).toThrow(/ZM_DB_HOST/);
    expect(() => zmDbSettings({ ...base, ZM_DB_HOST: 'db:70000' }, noSocket)).toThrow(/bad port/);
    expect(() => zmDbSettings({ ZM_DB_HOST: 'db' }, noSocket)).toThrow(/ZM_DB_USER/);
  });

  it('identifies this server by ZM_SERVER_ID, else ZM_SERVER_NAME or ZM_SERVER_HOST', () => {
    expect(zmServerIdentity({ ZM_SERVER_ID: '3', ZM_SERVER_NAME: 'x' })).toEqual({ id: 3 });
    expect(zmServerIdentity({ ZM_SERVER_NAME: 'edge-a' })).toEqual({ name: 'edge-a' });
    expect(zmServerIdentity({ ZM_SERVER_HOST: 'old-name' })).toEqual({ name: 'old-name' });
    expect(zmServerIdentity({})).toEqual({});
  });
});
