/**
 * Capture in ZoneMinder mode: the monitors ZoneMinder would capture on this
 * server, from a real MariaDB with ZoneMinder's Monitors and Servers tables,
 * captured into a real Redis, and kept in step with the table while running.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { CaptureService } from '../../services/capture/capture-service.js';
import { ZmMonitorSource } from '../../services/capture/zm-monitor-source.js';
import { ZmDatabase } from '../../shared/zoneminder/database.js';
import { toCaptureSpec } from '../../shared/zoneminder/monitors.js';
import { setLogLevel } from '../../shared/log.js';
import { MONITOR_NAMES_KEY, MONITORS_KEY, SUB_STREAMS_KEY, monitorKeys } from '../../shared/redis-keys.js';
import { createZmTestDatabase, type TestDatabase } from '../helpers/mariadb.js';
import { freshRedisUrl } from '../helpers/redis.js';
import { ZmFixture } from '../zoneminder/fixtures.js';
import { captureConfig } from '../fixtures/capture-config.js';
import { packetsOf, readEvents, readMetaConfig, readVideoStream } from '../fixtures/capture-stream.js';
import { until } from '../helpers/wait.js';
import { startRtspCamera, type RtspCamera } from '../fixtures/rtsp-camera.js';

const CAM = 'synthetic:?size=160x120&fps=10&gop=10';

let db: TestDatabase;
let zm: ZmFixture;
let zmdb: ZmDatabase;
let redis: Redis;
let capture: CaptureService;
let source: ZmMonitorSource | null;
let camera: RtspCamera | null;

beforeAll(() => setLogLevel('error'));
afterAll(() => setLogLevel('info'));

beforeEach(async () => {
  db = await createZmTestDatabase();
  zm = new ZmFixture(db);
  zmdb = ZmDatabase.connect(db.settings);
  await db.sql.query("INSERT INTO Servers (Id, Name, Hostname) VALUES (1, 'cam-a', 'a.local'), (2, 'cam-b', 'b.local')");
  const url = await freshRedisUrl();
  redis = new Redis(url);
  capture = new CaptureService(redis, captureConfig(url, []));
  await capture.start();
  source = camera = null;
});

afterEach(async () => {
  await source?.close();
  await capture.stop();
  await camera?.stop();
  redis.disconnect();
  await zmdb.close();
  await db.drop();
});

function follow(server: { id?: number; name?: string }, refreshMs = 60_000): Promise<ZmMonitorSource> {
  return ZmMonitorSource.start({ db: zmdb, capture, redis, server, refreshMs }).then((s) => (source = s));
}

const registered = async () => (await redis.smembers(MONITORS_KEY)).map(Number).sort((a, b) => a - b);
const packets = async (id: number) => packetsOf(await readVideoStream(redis, id)).length;
const state = async (id: number) => {
  const s = await redis.get(monitorKeys(id).status);
  return s ? (JSON.parse(s) as { state: string }).state : null;
};

/** One monitor per rule zmc/zmpkg apply, each of which would be captured but for that rule. */
async function monitorsOfEveryKind(): Promise<void> {
  await zm.addMonitor({ id: 1, name: 'Front', path: CAM, serverId: 1 });
  await zm.addMonitor({ id: 2, name: 'Back', path: CAM, serverId: 1, capturing: 'Ondemand' });
  await zm.addMonitor({ id: 3, name: 'Off', path: CAM, serverId: 1, capturing: 'None' });
  await zm.addMonitor({ id: 4, name: 'Deleted', path: CAM, serverId: 1, deleted: 1 });
  await zm.addMonitor({ id: 5, name: 'Web page', path: CAM, serverId: 1, type: 'WebSite' });
  await zm.addMonitor({ id: 6, name: 'Other server', path: CAM, serverId: 2 });
  await zm.addMonitor({ id: 7, name: 'No server', path: CAM, serverId: null });
}

describe('capture in ZoneMinder mode', () => {
  it('captures exactly the monitors ZoneMinder runs on this server (ZM_SERVER_NAME), named as in the Monitors table', async () => {
    await monitorsOfEveryKind();
    await follow({ name: 'cam-a' });

    expect(source!.serverId).toBe(1);
    expect(capture.monitorIds).toEqual([1, 2]);
    expect(await registered()).toEqual([1, 2]);
    expect(await redis.hgetall(MONITOR_NAMES_KEY)).toEqual({ 1: 'Front', 2: 'Back' });
    for (const id of [1, 2]) await until(async () => (await packets(id)) >= 3, 15_000, `packets of monitor ${id}`);
    for (const id of [3, 4, 5, 6, 7]) {
      expect(await redis.exists(monitorKeys(id).video, monitorKeys(id).status, monitorKeys(id).meta)).toBe(0);
    }
  });

  it('selects by ZM_SERVER_ID too, and captures every server\'s monitors when no server is configured', async () => {
    await monitorsOfEveryKind();
    await follow({ id: 2 });
    expect(capture.monitorIds).toEqual([6]);
    await source!.close();

    source = null;
    await follow({});
    expect(capture.monitorIds).toEqual([1, 2, 6, 7]);
  });

  it('refuses to start when ZM_SERVER_NAME is not in the Servers table', async () => {
    await expect(follow({ name: 'cam-z' })).rejects.toThrow(/ZM_SERVER_NAME "cam-z" is not in the Servers table/);
    expect(capture.monitorIds).toEqual([]);
  });

  it('follows monitors added, removed and edited in ZoneMinder while running, without restarting the others', async () => {
    await zm.addMonitor({ id: 1, name: 'Front', path: CAM, serverId: 1 });
    await zm.addMonitor({ id: 2, name: 'Back', path: CAM, serverId: 1 });
    await zm.addMonitor({ id: 9, name: 'Steady', path: CAM, serverId: 1 });
    await follow({ name: 'cam-a' }, 200);
    await until(async () => (await packets(9)) >= 3, 15_000, 'packets of monitor 9');

    // Added in the web UI.
    await zm.addMonitor({ id: 8, name: 'New', path: CAM, serverId: 1 });
    await until(async () => (await packets(8)) >= 3, 15_000, 'monitor 8 captured');
    expect(await redis.hget(MONITOR_NAMES_KEY, '8')).toBe('New');

    // Capturing set to None: stopped, still listed (it exists in ZoneMinder).
    await db.sql.query("UPDATE Monitors SET Capturing = 'None' WHERE Id = 2");
    await until(async () => (await state(2)) === 'stopped', 15_000, 'monitor 2 stopped');
    expect(await registered()).toContain(2);

    // Moved to another server: stopped here.
    await db.sql.query('UPDATE Monitors SET ServerId = 2 WHERE Id = 8');
    await until(async () => (await state(8)) === 'stopped', 15_000, 'monitor 8 stopped');
    expect(await registered()).toContain(8);

    // Deleted: stopped and no longer listed.
    await db.sql.query('UPDATE Monitors SET ServerId = 1 WHERE Id = 8');
    await until(async () => (await state(8)) === 'connected', 15_000, 'monitor 8 back');
    await db.sql.query('UPDATE Monitors SET Deleted = 1 WHERE Id = 8');
    await until(async () => !(await registered()).includes(8), 15_000, 'monitor 8 unlisted');
    expect(await redis.hexists(MONITOR_NAMES_KEY, '8')).toBe(0);
    expect(await redis.exists(monitorKeys(8).meta, monitorKeys(8).video)).toBe(0); // so no edge takes it for a live monitor
    expect(await state(8)).toBe('stopped');

    // Path and name edited: the camera connection is made anew, with the new stream.
    await db.sql.query("UPDATE Monitors SET Path = 'synthetic:?size=320x240&fps=10&gop=10', Name = 'Front door' WHERE Id = 1");
    await until(async () => (await readMetaConfig(redis, 1))?.width === 320, 15_000, 'monitor 1 at 320x240');
    expect((await readMetaConfig(redis, 1))?.generation).toBe(2);
    expect(await redis.hget(MONITOR_NAMES_KEY, '1')).toBe('Front door');

    expect(capture.monitorIds).toEqual([1, 9]);
    // Monitor 9 kept one connection through all of it: one generation, one unbroken sequence.
    expect((await readEvents(redis, 9)).map((e) => e.event)).toEqual(['connecting', 'connected']);
    expect((await readMetaConfig(redis, 9))?.generation).toBe(1);
    const seq = packetsOf(await readVideoStream(redis, 9)).map((p) => p.sequence);
    expect(seq).toEqual(seq.map((_, i) => i));
  });

  it('keeps capturing when ZoneMinder\'s database cannot be read, and catches up when it can', async () => {
    await zm.addMonitor({ id: 1, name: 'Front', path: CAM, serverId: 1 });
    await follow({ name: 'cam-a' });
    await db.sql.query('RENAME TABLE Monitors TO Monitors_away');
    await expect(source!.refresh()).rejects.toThrow(/Monitors/);
    const before = await packets(1);
    await until(async () => (await packets(1)) > before + 3, 15_000, 'packets still flowing');
    expect(capture.monitorIds).toEqual([1]);

    await db.sql.query('RENAME TABLE Monitors_away TO Monitors');
    await zm.addMonitor({ id: 2, name: 'Back', path: CAM, serverId: 1 });
    expect(await source!.refresh()).toMatchObject({ added: [2], removed: [], replaced: [] });
    expect(capture.monitorIds).toEqual([1, 2]);
  });

  it('leaves out monitors whose source zmcast cannot capture, and refuses a Path that can never work, capturing the rest', async () => {
    await zm.addMonitor({ id: 1, name: 'Front', path: CAM, serverId: 1 });
    await zm.addMonitor({ id: 2, name: 'MJPEG', path: 'http://10.0.0.9/video.cgi', serverId: 1 });
    await zm.addMonitor({ id: 3, name: 'USB', path: '', type: 'Local', serverId: 1 });
    await zm.addMonitor({ id: 4, name: 'Remote path only', path: '/stream1', type: 'Remote', serverId: 1 });
    await zm.addMonitor({ id: 5, name: 'Broken trial', path: 'synthetic:?codec=mjpeg', serverId: 1 });
    await follow({ name: 'cam-a' });
    expect(capture.monitorIds).toEqual([1]);
    expect(await registered()).toEqual([1]);
    expect(await source!.refresh()).toEqual({ added: [], removed: [], replaced: [], refused: [] });
  });

  it('opens an RTSP camera from Path with User/Pass, and asks for the transport its Method names', async () => {
    camera = await startRtspCamera({ gop: 10 });
    await zm.addMonitor({ id: 1, name: 'Door', path: camera.url, user: 'viewer', pass: 'p@ss', method: 'rtpUni', options: 'buffer_size=1024000', serverId: 1 });
    await follow({ name: 'cam-a' }, 500);
    await until(async () => (await packets(1)) >= 10, 15_000, 'RTSP packets of monitor 1');
    // Each added once the others stream: GStreamer's test server (one shared media) has been seen to die when
    // SETUPs race on it (a refused multicast one, or a TCP one beside the first UDP one), which says nothing about capture.
    await zm.addMonitor({ id: 2, name: 'Yard', path: camera.url, method: 'rtpRtsp', serverId: 1 });
    await until(async () => (await packets(2)) >= 10, 15_000, 'RTSP packets of monitor 2'); // found by the 500 ms poll
    await zm.addMonitor({ id: 3, name: 'Multicast', path: camera.url, method: 'rtpMulti', serverId: 1 });
    // This camera offers no multicast: the SETUP that asks for it is refused (461), so Method reached FFmpeg.
    await until(async () => (await readEvents(redis, 3)).some((e) => e.event === 'connection_failed'), 15_000, 'multicast refused');
    expect(await packets(3)).toBe(0);
  });

  it('captures SecondPath as the monitor\'s sub-stream, and drops it when SecondPath is emptied', async () => {
    await zm.addMonitor({ id: 1, name: 'Front', path: CAM, serverId: 1 });
    await zm.addMonitor({ id: 2, name: 'MJPEG sub', path: CAM, serverId: 1 });
    await db.sql.query("UPDATE Monitors SET SecondPath = 'synthetic:?size=96x64&fps=10&gop=10' WHERE Id = 1");
    // A sub-stream zmcast cannot capture leaves the main stream captured.
    await db.sql.query("UPDATE Monitors SET SecondPath = 'http://cam.local/mjpg' WHERE Id = 2");
    await follow({ name: 'cam-a' });
    await until(async () => packetsOf(await readVideoStream(redis, 1, 'sub')).length >= 5, 15_000, 'sub-stream packets');
    expect(await readMetaConfig(redis, 1, 'sub')).toMatchObject({ width: 96, height: 64 });
    expect(await readMetaConfig(redis, 1, 'main')).toMatchObject({ width: 160, height: 120 });
    expect(await redis.smembers(SUB_STREAMS_KEY)).toEqual(['1']);
    await until(async () => (await packets(2)) >= 3, 15_000, 'main stream of the monitor whose SecondPath is out of reach');

    await db.sql.query("UPDATE Monitors SET SecondPath = '' WHERE Id = 1");
    expect(await source!.refresh()).toMatchObject({ replaced: [1] });
    expect(await redis.smembers(SUB_STREAMS_KEY)).toEqual([]);
    expect(await readMetaConfig(redis, 1, 'sub')).toBeNull();
    await until(async () => (await packets(1)) >= 3, 15_000, 'main stream after the change');
  });

  it('puts User:Pass into SecondPath as ZoneMinder does (raw, after rtsp:// or before a bare path), and reads a schema without SecondPath', async () => {
    await zm.addMonitor({ id: 1, name: 'Scheme', path: 'rtsp://cam.local/main', user: 'viewer', pass: 'p@ss', serverId: 1 });
    await zm.addMonitor({ id: 2, name: 'Bare', path: 'rtsp://cam.local/main', user: 'viewer', pass: 'p@ss', serverId: 1 });
    await zm.addMonitor({ id: 3, name: 'No user', path: 'rtsp://cam.local/main', serverId: 1 });
    await zm.addMonitor({ id: 4, name: 'None', path: 'rtsp://cam.local/main', user: 'viewer', pass: 'p@ss', serverId: 1 });
    await db.sql.query("UPDATE Monitors SET SecondPath = CASE Id WHEN 1 THEN 'rtsp://cam.local/sub' WHEN 2 THEN 'cam.local/sub' WHEN 3 THEN 'rtsp://cam.local/sub' ELSE '' END");
    const specs = (await zmdb.captureMonitors(1)).map(toCaptureSpec);
    expect(specs.map((s) => s.secondSource)).toEqual([
      'rtsp://viewer:p@ss@cam.local/sub',
      'rtsp://viewer:p@ss@cam.local/sub',
      'rtsp://cam.local/sub',
      undefined,
    ]);

    // ZoneMinder before 1.35.20 has no SecondPath column: monitors read as having no sub-stream.
    await db.sql.query('ALTER TABLE Monitors DROP COLUMN SecondPath');
    const old = ZmDatabase.connect(db.settings);
    try {
      expect((await old.captureMonitors(1)).map((r) => r.secondPath)).toEqual(['', '', '', '']);
    } finally {
      await old.close();
    }
  });
});
