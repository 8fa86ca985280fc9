import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startEdge, PacketSource, type EdgeRig } from '../helpers/edge.js';
import { until } from '../helpers/wait.js';

let rig: EdgeRig | undefined;
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.terminate();
  await rig?.close();
  rig = undefined;
});

type Msg = { text?: Record<string, unknown>; binary?: Buffer };

/** A client written for ZoneMinder's draft: text JSON and binary frames, in order. */
async function zmClient(path: string) {
  const ws = new WebSocket(rig!.url.replace('http', 'ws') + path);
  sockets.push(ws);
  const messages: Msg[] = [];
  ws.on('message', (data, isBinary) => messages.push(isBinary ? { binary: data as Buffer } : { text: JSON.parse(data.toString()) }));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  return { ws, messages, send: (o: object) => ws.send(JSON.stringify(o)) };
}

describe('ZoneMinder per-monitor endpoint', () => {
  it('answers status with the draft field names', async () => {
    rig = await startEdge();
    const cam = new PacketSource(rig.redis, 3, { gop: 5, size: 100 });
    await cam.register();
    const c = await zmClient('/monitors/3/ws');
    c.send({ command: 'status' });
    await until(() => c.messages.length > 0, 5000, 'status');
    const s = c.messages[0].text!;
    expect(s.type).toBe('status');
    for (const field of ['monitor_id', 'monitor_name', 'connected', 'shm_valid', 'state_id', 'state', 'capture_fps', 'analysis_fps',
      'capture_bandwidth', 'image_count', 'analysing', 'capturing', 'recording', 'signal', 'last_frame_score', 'last_event_id',
      'heartbeat_time', 'startup_time']) expect(s).toHaveProperty(field);
    expect(s.monitor_id).toBe(3);
    expect(s.monitor_name).toBe('Test 3');
  });

  it('subscribes to status with a clamped interval: ack first, then status at once', async () => {
    rig = await startEdge();
    await new PacketSource(rig.redis, 3, { gop: 5, size: 100 }).register();
    const c = await zmClient('/monitors/3/ws');
    c.send({ command: 'subscribe', topic: 'status', interval_ms: 5 });
    await until(() => c.messages.length >= 3, 5000, 'ack and two statuses');
    expect(c.messages[0].text).toMatchObject({ type: 'ack', topic: 'status', interval_ms: 100 });
    expect(c.messages[1].text!.type).toBe('status');
  });

  it('streams passthrough packets as metadata + bytes pairs from the latest keyframe, extradata first', async () => {
    rig = await startEdge();
    const cam = new PacketSource(rig.redis, 3, { gop: 5, size: 300 });
    await cam.register();
    await cam.publish(7); // keyframes at 0 and 5
    const c = await zmClient('/monitors/3/ws');
    c.send({ command: 'subscribe', topic: 'stream', codec: 'h264', request_id: 'r1' });
    await until(() => c.messages.length >= 5, 5000, 'ack + 2 pairs');
    expect(c.messages[0].text).toMatchObject({ type: 'ack', topic: 'stream', interval_ms: 0 });
    const [meta, bytes, meta2, bytes2] = c.messages.slice(1, 5);
    expect(meta.text).toMatchObject({ type: 'stream', request_id: 'r1', format: 'h264', content_type: 'video/h264', monitor_id: 3, keyframe: true, sequence: 5, width: 320, height: 240 });
    expect(meta.text!.payload_bytes).toBe(bytes.binary!.length);
    expect(bytes.binary!.subarray(0, 5)).toEqual(Buffer.from([0, 0, 0, 1, 0x67])); // SPS leads the keyframe
    expect(meta2.text).toMatchObject({ keyframe: false, sequence: 6 });
    expect(bytes2.binary!.length).toBe(300);
  });

  it('answers a one-shot stream with the latest keyframe and its extradata', async () => {
    rig = await startEdge();
    const cam = new PacketSource(rig.redis, 3, { gop: 5, size: 300 });
    await cam.register();
    await cam.publish(8);
    const c = await zmClient('/monitors/3/ws');
    c.send({ command: 'stream', codec: 'h264' });
    await until(() => c.messages.length >= 2, 5000, 'one-shot');
    expect(c.messages[0].text).toMatchObject({ type: 'stream', keyframe: true, sequence: 5 });
    expect(c.messages[1].binary!.length).toBe(14 + 300);
  });

  it('uses the draft error messages', async () => {
    rig = await startEdge();
    await new PacketSource(rig.redis, 3, { gop: 5, size: 100 }).register();
    const c = await zmClient('/monitors/3/ws');
    c.send({});
    c.send({ command: 'dance' });
    c.send({ command: 'subscribe' });
    c.send({ command: 'subscribe', topic: 'weather' });
    c.send({ command: 'stream', codec: 'h265' });
    c.send({ command: 'stream', codec: 'mjpeg' }); // this camera has sent no video: nothing to make a JPEG of
    c.send({ command: 'image' });
    await until(() => c.messages.length >= 7, 5000, 'errors');
    expect(c.messages.map((m) => m.text!.message)).toEqual([
      'Missing command', 'Unsupported command', 'Missing topic', 'Unsupported topic',
      'Unsupported stream codec or payload unavailable', 'Unable to fetch mjpeg stream payload', 'Unable to fetch image payload',
    ]);
    expect(c.messages.map((m) => m.text!.code)).toEqual(['missing_command', 'unknown_command', 'missing_topic', 'unknown_topic', 'unsupported_codec', 'camera_down', 'camera_down']);
  });

  it('refuses the upgrade for a monitor that does not exist', async () => {
    rig = await startEdge();
    const ws = new WebSocket(rig.url.replace('http', 'ws') + '/monitors/999/ws');
    const status = await new Promise<number>((resolve) => {
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('open', () => resolve(101));
      ws.once('error', () => {});
    });
    expect(status).toBe(404);
  });
});

describe('bad input on /ws', () => {
  it('answers each bad command with a JSON error and keeps serving the healthy viewer', async () => {
    rig = await startEdge({ edge: { maxPayload: 4096 } });
    const cam = new PacketSource(rig.redis, 1, { gop: 5, size: 200 });
    await cam.register();
    const healthy = await zmClient('/ws');
    healthy.send({ command: 'subscribe', topic: 'stream', monitor_id: 1, codec: 'auto' });
    const bad = await zmClient('/ws');
    bad.ws.send('{not json');
    bad.ws.send('[1,2]');
    bad.send({ command: 'status' });
    bad.send({ command: 'status', monitor_id: 'abc' });
    bad.send({ command: 'status', monitor_id: 424242 });
    bad.send({ command: 'subscribe', topic: 'events', monitor_id: 1, since: 'yesterday' });
    bad.ws.send(Buffer.from([1, 2, 3]));
    await until(() => bad.messages.filter((m) => m.text?.type === 'error').length >= 7, 5000, 'errors');
    expect(bad.messages.filter((m) => m.text?.type === 'error').map((m) => m.text!.code)).toEqual([
      'bad_json', 'bad_request', 'missing_monitor', 'bad_request', 'unknown_monitor', 'bad_request', 'bad_request',
    ]);
    const closed = new Promise<number>((resolve) => bad.ws.once('close', (code) => resolve(code)));
    bad.ws.send('x'.repeat(10_000)); // over maxPayload
    expect(await closed).toBe(1009);
    await cam.publish(20);
    await until(() => healthy.messages.filter((m) => m.binary).length === 20, 5000, 'healthy packets');
  });

  it('rate-limits a command flood and then closes it, without touching other clients', async () => {
    rig = await startEdge({ edge: { commandsPerSecond: 20 } });
    const cam = new PacketSource(rig.redis, 1, { gop: 5, size: 200 });
    await cam.register();
    const healthy = await zmClient('/ws');
    healthy.send({ command: 'subscribe', topic: 'stream', monitor_id: 1, codec: 'auto' });
    const flood = await zmClient('/ws');
    const closed = new Promise<number>((resolve) => flood.ws.once('close', (code) => resolve(code)));
    for (let i = 0; i < 1000; i++) flood.send({ command: 'status', monitor_id: 1 });
    expect(await closed).toBe(4029);
    expect(flood.messages.some((m) => m.text?.code === 'rate_limited')).toBe(true);
    await cam.publish(10);
    await until(() => healthy.messages.filter((m) => m.binary).length === 10, 5000, 'healthy packets');
  });
});
