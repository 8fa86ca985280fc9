/**
 * Bounded waiting on Redis: every answer a user waits for (an HTTP reply, a
 * status, a shutdown) must come in bounded time, even while Redis is away.
 */

/** The value, or undefined when `promise` failed or took longer than `ms`. */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise.catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}
