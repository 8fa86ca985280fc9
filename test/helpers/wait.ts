/** Waiting in tests: one sleep, one poll. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** What `until` takes for "not yet". */
type NotYet = false | 0 | '' | null | undefined;

/**
 * Polls `check` until it returns something truthy and resolves to that
 * (`true` for a plain condition, the record itself for a lookup), or throws
 * after `timeoutMs` naming what it waited for. An error thrown by `check`
 * ends the wait at once.
 */
export async function until<T>(check: () => T | NotYet | Promise<T | NotYet>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}
