/**
 * A token valid for longer than a timer can wait (2^31-1 ms, ~24.8 days) must
 * not be warned about at once: Node fires such a timer immediately.
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { toWsUrl } from '../../client/zmcast-client.js';
import { mintToken } from '../../shared/auth/index.js';
import { startEdge, type EdgeRig } from '../helpers/edge.js';
import { sleep } from '../helpers/wait.js';

const SECRET = 'long-lived-token-test-secret-0123456789';
let rig: EdgeRig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

describe('long-lived tokens', () => {
  it('gets no auth_expiring warning and no close when the token expires in 30 days', async () => {
    rig = await startEdge({ auth: { mode: 'config', secret: SECRET, users: [{ name: 'wall', monitors: '*', enabled: true, tokensNotBefore: 0 }] } });
    const token = await mintToken('wall', SECRET, 30 * 86_400);
    // Listening from the first byte: an overflowing timer fires within a millisecond of the upgrade.
    const ws = new WebSocket(toWsUrl(rig.url), { headers: { authorization: `Bearer ${token}` } });
    const seen: string[] = [];
    ws.on('message', (data, isBinary) => {
      if (!isBinary) seen.push(String((JSON.parse(data.toString()) as { type: string }).type));
    });
    let closed = false;
    ws.on('close', () => (closed = true));
    await sleep(1000);
    expect(seen).toEqual(['hello']);
    expect(closed).toBe(false);
    ws.close();
  });
});
