/**
 * Once per `npm test`: lints (`npm run lint`: promises nobody awaits or
 * catches), builds dist/ (the CLI tests run the real command), type-checks
 * the tests, and, unless TEST_REDIS_URL/REDIS_URL names one, starts a private
 * redis-server so this run shares Redis with nobody else.
 */
import { execFileSync } from 'node:child_process';
import { spawnRedis, type LocatedRedis } from '../../shared/redis-locator.js';

let redis: LocatedRedis | undefined;

export async function setup(): Promise<void> {
  lint();
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
  // The tests are TypeScript too: vitest strips their types without checking them.
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.test.json'], { stdio: 'inherit' });
  if (process.env.TEST_REDIS_URL || process.env.REDIS_URL) return;
  try {
    redis = await spawnRedis();
    process.env.TEST_REDIS_URL = redis.url;
  } catch {
    // No redis-server binary: test/helpers/redis.ts falls back to a local server or a container.
  }
}

/** The linter prints its findings itself; the error says where to look and what to run. */
function lint(): void {
  try {
    execFileSync('npm', ['run', '--silent', 'lint'], { stdio: 'inherit' });
  } catch (err) {
    throw new Error(`npm run lint failed (${(err as Error).message.split('\n')[0]}): its findings are printed above. ` +
      'Await or catch the promise (log the failure); `void` only a promise that handles its own rejection, ' +
      'with an oxlint-disable-next-line comment saying why.');
  }
}

export async function teardown(): Promise<void> {
  await redis?.stop();
}
