import { describe, expect, it } from 'vitest';
import { parseCommand, ProtocolError } from '../../shared/protocol.js';

const codeOf = (text: string, monitor?: number) => {
  try {
    parseCommand(text, monitor);
    return 'ok';
  } catch (e) {
    return (e as ProtocolError).code;
  }
};

describe('command parsing', () => {
  it('accepts the ZoneMinder draft commands on a per-monitor socket', () => {
    expect(parseCommand('{"command":"status"}', 5)).toEqual({ command: 'status', monitorId: 5, requestId: undefined });
    expect(parseCommand('{"command":"subscribe","topic":"stream","codec":"h264"}', 5)).toMatchObject({ topic: 'stream', codec: 'h264', monitorId: 5 });
    expect(parseCommand('{"command":"stream"}', 5)).toMatchObject({ codec: 'mjpeg' });
    expect(parseCommand('{"command":"image"}', 5)).toMatchObject({ format: 'jpeg' });
  });

  it('clamps status intervals to 100..60000 ms, default 1000', () => {
    const interval = (v: unknown) => (parseCommand(JSON.stringify({ command: 'subscribe', topic: 'status', interval_ms: v }), 1) as { intervalMs: number }).intervalMs;
    expect(interval(undefined)).toBe(1000);
    expect(interval(1)).toBe(100);
    expect(interval(10_000_000)).toBe(60_000);
    expect(interval(250.4)).toBe(250);
  });

  it('requires monitor_id on /ws and checks it matches a per-monitor socket', () => {
    expect(codeOf('{"command":"status"}')).toBe('missing_monitor');
    expect(codeOf('{"command":"status","monitor_id":"12"}')).toBe('ok');
    expect(codeOf('{"command":"status","monitor_id":2}', 3)).toBe('bad_request');
    expect(codeOf('{"command":"status","monitor_id":-1}')).toBe('bad_request');
    expect(codeOf('{"command":"status","monitor_id":1e20}')).toBe('bad_request');
  });

  it('names what is wrong with a bad command', () => {
    expect(codeOf('nope')).toBe('bad_json');
    expect(codeOf('"a string"')).toBe('bad_request');
    expect(codeOf('null')).toBe('bad_request');
    expect(codeOf('{}')).toBe('missing_command');
    expect(codeOf('{"command":42}')).toBe('bad_request');
    expect(codeOf('{"command":"reboot","monitor_id":1}')).toBe('unknown_command');
    expect(codeOf('{"command":"subscribe","monitor_id":1}')).toBe('missing_topic');
    expect(codeOf('{"command":"subscribe","monitor_id":1,"topic":"x"}')).toBe('unknown_topic');
    expect(codeOf('{"command":"stream","monitor_id":1,"codec":"vp9"}')).toBe('unsupported_codec');
    expect(codeOf('{"command":"subscribe","monitor_id":1,"topic":"events","since":"drop table"}')).toBe('bad_request');
    expect(codeOf('{"command":"subscribe","monitor_id":1,"topic":"status","interval_ms":"fast"}')).toBe('bad_request');
  });

  it('echoes request ids, and drops ones that are too long to echo', () => {
    expect(parseCommand('{"command":"status","request_id":"abc"}', 1).requestId).toBe('abc');
    expect(parseCommand(JSON.stringify({ command: 'status', request_id: 'x'.repeat(500) }), 1).requestId).toBeUndefined();
  });
});
