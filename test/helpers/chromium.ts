/**
 * Debian's Chromium, headless, driven by playwright-core, for the tests that
 * run the live-view page. Fails loudly when it is missing.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export function launchChromium(): Promise<BrowserContext> {
  return chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'zmcast-chromium-')), {
    executablePath: CHROMIUM,
    // No background networking: this machine's closed network refuses those connections by the dozen.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  }).catch((err: Error) => {
    throw new Error(`Chromium is needed for the page tests (Debian package chromium, or CHROMIUM_PATH): ${err.message}`);
  });
}
