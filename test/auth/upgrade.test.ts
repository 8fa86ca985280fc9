/**
 * The integration the edge is meant to do, on real sockets: authenticate the
 * upgrade (refusing with the AuthError's status and no upgrade), echo the
 * subprotocol browsers require, fall back to in-band auth when the upgrade
 * carried nothing, and close with the AuthError's close code.
 */
import { createServer, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { createAuthenticator, type Authenticator } from '../../shared/auth/authenticator.js';
import { chooseSubprotocol, isAuthMessage, parseAuthMessage } from '../../shared/auth/credentials.js';
import { AuthError, AuthErrorCode } from '../../shared/auth/errors.js';
import { mintToken } from '../../shared/auth/config-users.js';
import type { Principal } from '../../shared/auth/types.js';
import { setLogLevel } from '../../shared/log.js';
import { authConfig, zmBcrypt } from './zm-fixtures.js';

const SECRET = 'upgrade-test-secret-upgrade-test-secret';
let auth: Authenticator;
let server: Server;
let base: string;

function refuse(socket: Duplex, err: AuthError): void {
  const body = `${err.publicReason}\n`;
  socket.end(`HTTP/1.1 ${err.status} ${err.statusText}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

beforeAll(async () => {
  setLogLevel('error');
  auth = await createAuthenticator(authConfig({
    mode: 'config', secret: SECRET, inBandTimeoutMs: 500,
    users: [{ name: 'viewer', password: zmBcrypt('pw'), monitors: [1], enabled: true, tokensNotBefore: 0 }],
  }));
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (offered) => chooseSubprotocol(offered) });
  server = createServer();
  server.on('upgrade', async (req, socket, head) => {
    let principal: Principal | null = null;
    try {
      const { presented, clientAddress } = auth.fromRequest(req);
      principal = await auth.authenticate(presented, clientAddress);
    } catch (err) {
      const e = err as AuthError;
      if (e.code !== AuthErrorCode.CredentialsRequired) return refuse(socket, e);
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const hello = (p: Principal) => ws.send(JSON.stringify({ type: 'hello', user: p.user, monitor1: p.canView(1), monitor2: p.canView(2) }));
      if (principal) return hello(principal);
      const timer = setTimeout(() => ws.close(4401, 'Authentication required'), 500);
      ws.once('message', async (data) => {
        clearTimeout(timer);
        try {
          const msg = JSON.parse(String(data));
          if (!isAuthMessage(msg)) throw new AuthError(AuthErrorCode.CredentialsRequired, 'Authentication required');
          hello(await auth.authenticate(parseAuthMessage(msg), req.socket.remoteAddress ?? ''));
        } catch (err) {
          const e = err instanceof AuthError ? err : new AuthError(AuthErrorCode.BadCredentials, 'Malformed auth message');
          ws.close(e.closeCode, e.publicReason);
        }
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `ws://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  setLogLevel('info');
  await auth.close();
  await new Promise((r) => server.close(r));
});

function connect(path: string, opts: { protocols?: string[]; headers?: Record<string, string> } = {}) {
  const ws = new WebSocket(base + path, opts.protocols ?? [], { headers: opts.headers });
  return {
    ws,
    opened: new Promise<{ first: Record<string, unknown>; protocol: string }>((resolve, reject) => {
      ws.once('message', (d) => resolve({ first: JSON.parse(String(d)), protocol: ws.protocol }));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c) => { body += c; });
        res.on('end', () => reject(Object.assign(new Error('refused'), { status: res.statusCode, body })));
      });
      ws.once('error', () => {});
    }),
    closed: new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: String(reason) }))),
  };
}

describe('authentication at the upgrade, as the edge does it', () => {
  it('accepts a token in the subprotocol and echoes the plain zmcast protocol', async () => {
    const token = await mintToken('viewer', SECRET, 60);
    const c = connect('/ws', { protocols: ['zmcast', `zmcast.token.${token}`] });
    const { first, protocol } = await c.opened;
    expect(first).toEqual({ type: 'hello', user: 'viewer', monitor1: true, monitor2: false });
    expect(protocol).toBe('zmcast');
    c.ws.close();
  });

  it('refuses a bad password with 401 and no upgrade', async () => {
    const c = connect('/ws?user=viewer&pass=wrong');
    await expect(c.opened).rejects.toMatchObject({ status: 401, body: 'Invalid username or password\n' });
  });

  it('refuses a repeated credential parameter with 400', async () => {
    const c = connect('/ws?token=a.b.c&token=d.e.f');
    await expect(c.opened).rejects.toMatchObject({ status: 400 });
  });

  it('takes in-band credentials when the upgrade had none', async () => {
    const c = connect('/ws');
    c.ws.once('open', () => c.ws.send(JSON.stringify({ command: 'auth', user: 'viewer', pass: 'pw' })));
    expect((await c.opened).first).toMatchObject({ user: 'viewer' });
    c.ws.close();
  });

  it('closes with 4401 when in-band credentials are wrong or never come', async () => {
    const wrong = connect('/ws');
    wrong.ws.once('open', () => wrong.ws.send(JSON.stringify({ command: 'auth', token: 'not.a.token' })));
    expect(await wrong.closed).toEqual({ code: 4401, reason: 'Invalid token' });
    const silent = connect('/ws');
    expect(await silent.closed).toEqual({ code: 4401, reason: 'Authentication required' });
  });
});
