/**
 * Once per `npm test`: builds dist/ (the CLI tests run the real command),
 * type-checks the tests, and, unless TEST_REDIS_URL/REDIS_URL names one,
 * starts a private redis-server so this run shares Redis with nobody else.
 */
import { execFileSync } from 'node:child_process';
import { spawnRedis, type LocatedRedis } from '../../shared/redis-locator.js';

let redis: LocatedRedis | undefined;

export async function setup(): Promise<void> {
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

export async function teardown(): Promise<void> {
  await redis?.stop();
}
