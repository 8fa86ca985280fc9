/**
 * A minimal typed event emitter for the code that runs in browsers too
 * (node:events does not exist there). A listener that throws is reported to
 * `onListenerError` and does not stop the others.
 */
type Listener<A extends unknown[]> = (...args: A) => void;
// Stored untyped: each set only ever holds listeners of its own event.
type AnyListener = (...args: unknown[]) => void;

export class TypedEmitter<Events extends { [K in keyof Events]: unknown[] }> {
  private readonly listeners = new Map<keyof Events, Set<AnyListener>>();

  constructor(private readonly onListenerError: (err: unknown) => void = (err) => console.error(err)) {}

  on<K extends keyof Events>(type: K, listener: Listener<Events[K]>): this {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(listener as unknown as AnyListener);
    return this;
  }

  off<K extends keyof Events>(type: K, listener: Listener<Events[K]>): this {
    this.listeners.get(type)?.delete(listener as unknown as AnyListener);
    return this;
  }

  once<K extends keyof Events>(type: K, listener: Listener<Events[K]>): this {
    const wrapped: Listener<Events[K]> = (...args) => {
      this.off(type, wrapped);
      listener(...args);
    };
    return this.on(type, wrapped);
  }

  protected emit<K extends keyof Events>(type: K, ...args: Events[K]): void {
    const set = this.listeners.get(type);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(...(args as unknown[]));
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }
}
