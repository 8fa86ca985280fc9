/**
 * The live-view page and the one module it shares with the server
 * (the compiled shared/packet.ts), read once at start.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Sent with every page file. The page runs only its own scripts and talks
 * only to its own edge (CSP `'self'` covers ws:/wss: to the same host), no
 * other site may frame it (clickjacking), and no URL it was opened with
 * leaks to another site in a Referer.
 */
export const PAGE_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
} as const;

export interface StaticFile {
  body: Buffer;
  type: string;
}

function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the zmcast checkout (package.json)');
    dir = up;
  }
  return dir;
}

const FILES: Record<string, [path: string, type: string]> = {
  '/': ['services/edge/public/index.html', 'text/html; charset=utf-8'],
  '/live-view.js': ['services/edge/public/live-view.js', 'text/javascript; charset=utf-8'],
  '/lib/packet.js': ['dist/shared/packet.js', 'text/javascript; charset=utf-8'],
};

export function loadStaticFiles(): Map<string, StaticFile> {
  const root = projectRoot();
  const files = new Map<string, StaticFile>();
  for (const [route, [path, type]] of Object.entries(FILES)) {
    const full = join(root, path);
    // dist/ exists once built (npm ci builds it); without it the page says why.
    if (existsSync(full)) files.set(route, { body: readFileSync(full), type });
  }
  return files;
}
