import { describe, expect, it } from 'vitest';
import { parseZmsQuery, ZMS_PATH } from '../../services/edge/zms-request.js';

describe('zms query strings, read as zms reads them', () => {
  it('reads the live-view parameters ZoneMinder\'s web UI, zmNinja and Home Assistant send', () => {
    const z = parseZmsQuery('?mode=jpeg&scale=50&maxfps=5&buffer=1000&monitor=3&connkey=123456&rand=1764072000&width=640&height=360');
    expect(z).toMatchObject({ mode: 'jpeg', monitorId: 3, scale: 50, maxfps: 5, width: 640, height: 360 });
    expect(parseZmsQuery('mode=single&monitor=7')).toMatchObject({ mode: 'single', monitorId: 7 });
    expect(parseZmsQuery('monitor=7').mode).toBe('jpeg'); // zms' default mode
    expect(parseZmsQuery('mode=paused&monitor=7').mode).toBe('jpeg'); // zms treats paused as jpeg
  });

  it('refuses what an edge cannot serve: recordings and other modes', () => {
    expect(parseZmsQuery('source=event&event=12&mode=jpeg')).toMatchObject({ mode: null, unsupported: 'source' });
    expect(parseZmsQuery('mode=mpeg&format=h264&monitor=1')).toMatchObject({ mode: null, unsupported: 'mode' });
    expect(parseZmsQuery('mode=raw&monitor=1').mode).toBeNull();
  });

  it('reads at most 16 parameters, cuts a value at its next "=", and lets the last repeat win', () => {
    const filler = Array.from({ length: 15 }, (_, i) => `x${i}=1`).join('&');
    expect(parseZmsQuery(`${filler}&monitor=4&scale=10`).monitorId).toBe(4);
    expect(parseZmsQuery(`${filler}&rand=1&monitor=4`).monitorId).toBeNull();
    expect(parseZmsQuery('monitor=4&token=abc=def').credentials.get('token')).toBe('abc');
    expect(parseZmsQuery('monitor=4&monitor=5').monitorId).toBe(5);
  });

  it('URI-decodes only user and password values, as zms does', () => {
    const z = parseZmsQuery('monitor=1&user=J%C3%BCrgen&pass=p%26ss+word&token=a%2Eb&auth=0123456789abcdef0123456789abcdef');
    expect(z.credentials.get('user')).toBe('Jürgen');
    expect(z.credentials.get('pass')).toBe('p&ss word');
    expect(z.credentials.get('token')).toBe('a%2Eb');
    expect(z.credentials.get('auth')).toBe('0123456789abcdef0123456789abcdef');
    expect(parseZmsQuery('monitor=1&username=a&password=b').credentials.toString()).toBe('username=a&password=b');
  });

  it('reads numbers like atoi/atof and caps scale at 1600 percent', () => {
    expect(parseZmsQuery('monitor=2abc&scale=99999&maxfps=0.5').monitorId).toBe(2);
    expect(parseZmsQuery('monitor=2&scale=99999').scale).toBe(1600);
    expect(parseZmsQuery('monitor=2&maxfps=0.5').maxfps).toBe(0.5);
    expect(parseZmsQuery('monitor=x&scale=0&maxfps=-3&width=0')).toMatchObject({ monitorId: null, scale: undefined, maxfps: undefined, width: undefined });
  });

  it('answers on ZoneMinder\'s paths, behind any prefix', () => {
    for (const p of ['/cgi-bin/nph-zms', '/zm/cgi-bin/nph-zms', '/cameras/zm/cgi-bin/nph-zms', '/cgi-bin/zms']) expect(ZMS_PATH.test(p), p).toBe(true);
    for (const p of ['/nph-zms', '/cgi-bin/nph-zms/x', '/zm/../cgi-bin/nph-zmsx']) expect(ZMS_PATH.test(p), p).toBe(false);
  });
});
