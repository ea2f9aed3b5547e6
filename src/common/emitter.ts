// A minimal typed event emitter: `onDidX(listener)` returns an unsubscribe.
// A throwing listener is reported to `console.error` and never stops the others.
export type Listener<T> = (value: T) => void;
export type Event<T> = (listener: Listener<T>) => () => void;

export class Emitter<T> {
  private readonly listeners = new Set<Listener<T>>();
  readonly event: Event<T> = (listener) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };
  fire(value: T): void {
    if (this.listeners.size === 0) return;
    for (const l of [...this.listeners]) {
      try {
        l(value);
      } catch (e) {
        console.error('tether: event listener failed:', e);
      }
    }
  }
}
