/**
 * Bounded-concurrency map over an async source that yields results in INPUT order: at most
 * `concurrency` calls of `fn` are in flight, and memory holds at most that many results.
 * `fn` should not reject (return a value describing the failure instead); if it does, the
 * rejection surfaces at that item's turn.
 */
export async function* orderedMap<T, R>(
  source: AsyncIterable<T> | Iterable<T>,
  concurrency: number,
  fn: (item: T) => Promise<R>,
): AsyncGenerator<R, void, undefined> {
  const window: Promise<R>[] = [];
  for await (const item of source) {
    const p = fn(item);
    // Attach a handler now so a rejection waiting in the window is not "unhandled".
    p.catch(() => undefined);
    window.push(p);
    if (window.length >= concurrency) yield await (window.shift() as Promise<R>);
  }
  while (window.length > 0) yield await (window.shift() as Promise<R>);
}

/** Flattens an async source of arrays. */
export async function* flatten<T>(source: AsyncIterable<T[]>): AsyncGenerator<T, void, undefined> {
  for await (const batch of source) yield* batch;
}
