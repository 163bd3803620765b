/**
 * Detections as async iterators: each iterator buffers what its consumer has
 * not read yet; {@link DetectionFeed.end} ends every open iterator.
 * @module
 */

/** Fans pushed values out to any number of async iterators. */
export class DetectionFeed<T> {
  private readonly sinks = new Set<{ push(d: T | undefined): void }>();

  /** A new iterator from now on; already done when `ended`. */
  iterator(ended: boolean): AsyncIterableIterator<T> {
    const buf: T[] = [];
    const waiting: ((r: IteratorResult<T>) => void)[] = [];
    let done = ended;
    const sink = {
      push: (d: T | undefined): void => {
        if (d === undefined) {
          done = true;
          for (const w of waiting.splice(0)) w({ value: undefined, done: true });
          return;
        }
        const w = waiting.shift();
        if (w) w({ value: d, done: false });
        else buf.push(d);
      },
    };
    if (!done) this.sinks.add(sink);
    const it: AsyncIterableIterator<T> = {
      next: () => {
        if (buf.length > 0) return Promise.resolve({ value: buf.shift() as T, done: false });
        if (done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => waiting.push(resolve));
      },
      return: () => {
        done = true;
        this.sinks.delete(sink);
        for (const w of waiting.splice(0)) w({ value: undefined, done: true });
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  /** Hand `d` to every open iterator. */
  push(d: T): void {
    for (const s of this.sinks) s.push(d);
  }

  /** End every open iterator. */
  end(): void {
    for (const s of this.sinks) s.push(undefined);
    this.sinks.clear();
  }
}
