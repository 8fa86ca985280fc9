/** The ZoneMinder Monitors and Servers tables as zmcast capture reads them, on a real MariaDB. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZmDatabase } from '../../shared/zoneminder/database.js';
import { parseFfmpegOptions, toCaptureSpec } from '../../shared/zoneminder/monitors.js';
import { createZmTestDatabase, type TestDatabase } from '../helpers/mariadb.js';
import { ZmFixture } from './fixtures.js';

let db: TestDatabase;
let zm: ZmFixture;
let zmdb: ZmDatabase;

beforeAll(async () => {
  db = await createZmTestDatabase();
  zm = new ZmFixture(db);
  zmdb = ZmDatabase.connect(db.settings);
  await db.sql.query("INSERT INTO Servers (Name, Hostname) VALUES ('edge-a', 'a.local'), ('edge-b', 'b.local')");
  await zm.addMonitor({ id: 1, name: 'Front door', path: 'rtsp://10.0.0.5:554/stream1', user: 'cam', pass: 'p@ss:word', method: 'rtpRtsp', options: 'stimeout=5000000, buffer_size=1024000', serverId: 1 });
  await zm.addMonitor({ id: 2, name: 'Yard', path: 'rtsp://viewer:own@10.0.0.6/live', user: 'ignored', pass: 'ignored', method: 'rtpUni', serverId: 2 });
  await zm.addMonitor({ id: 3, name: 'Trial', path: 'synthetic:?size=320x240', serverId: 1 });
  await zm.addMonitor({ id: 4, name: 'Off', capturing: 'None', serverId: 1 });
  await zm.addMonitor({ id: 5, name: 'Gone', deleted: 1, serverId: 1 });
  await zm.addMonitor({ id: 6, name: 'Web page', type: 'WebSite', serverId: 1 });
  await zm.addMonitor({ id: 7, name: 'On demand', capturing: 'Ondemand', serverId: null });
});

afterAll(async () => {
  await zmdb?.close();
  await db?.drop();
});

describe('ZoneMinder monitors for capture', () => {
  it('selects what zmc/zmpkg would run: Capturing != None, not deleted, not WebSite', async () => {
    expect((await zmdb.captureMonitors(null)).map((m) => m.id)).toEqual([1, 2, 3, 7]);
  });

  it('selects only this server\'s monitors when a server is configured, by id or by name', async () => {
    expect((await zmdb.captureMonitors(1)).map((m) => m.id)).toEqual([1, 3]);
    const id = await zmdb.serverId({ name: 'edge-b' });
    expect((await zmdb.captureMonitors(id)).map((m) => m.id)).toEqual([2]);
    expect(await zmdb.serverId({ id: 1 })).toBe(1);
    expect(await zmdb.serverId({})).toBeNull();
    await expect(zmdb.serverId({ name: 'edge-z' })).rejects.toThrow(/not in the Servers table/);
  });

  it('builds the camera URL with User/Pass only when Path has no userinfo, and maps Method to the RTSP transport', async () => {
    const [front, yard, trial] = (await zmdb.captureMonitors(null)).map(toCaptureSpec);
    expect(front).toEqual({
      id: 1, name: 'Front door', source: 'rtsp://cam:p%40ss%3Aword@10.0.0.5:554/stream1', rtspTransport: 'tcp',
      options: { stimeout: '5000000', buffer_size: '1024000' },
    });
    expect(yard).toMatchObject({ source: 'rtsp://viewer:own@10.0.0.6/live', rtspTransport: 'udp' });
    expect(trial).toMatchObject({ source: 'synthetic:?size=320x240', options: {} });
    expect(trial.rtspTransport).toBeUndefined();
  });

  it('lists existing monitors with their names', async () => {
    expect((await zmdb.monitors()).map((m) => m.name)).toEqual(['Front door', 'Yard', 'Trial', 'Off', 'Web page', 'On demand']);
  });

  it('parses Options like av_dict_parse_string', () => {
    expect(parseFfmpegOptions('a=1,b=x=y, ,=bad,c')).toEqual({ a: '1', b: 'x=y' });
  });
});
