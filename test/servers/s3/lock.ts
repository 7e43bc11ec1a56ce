/**
 * Per-name readers/writer locks, in memory. The server holds one per object key across a whole
 * request, so that a conditional write's check and its write are one atomic step and a reader
 * never sees a write half done. This is atomic within one server process, which is the test
 * setup: many client processes, one server.
 *
 * Fair in arrival order: a reader that arrives after a waiting writer waits behind it, so a
 * stream of readers cannot starve writers.
 */

type Mode = 'read' | 'write';

interface Waiter {
  mode: Mode;
  wake: () => void;
}

interface LockState {
  readers: number;
  writer: boolean;
  queue: Waiter[];
}

export type Release = () => void;

export class KeyLocks {
  private readonly locks = new Map<string, LockState>();

  /** Names currently locked or waited for (for tests of the lock itself). */
  get size(): number {
    return this.locks.size;
  }

  acquire(name: string, mode: Mode): Promise<Release> {
    let state = this.locks.get(name);
    if (state === undefined) {
      state = { readers: 0, writer: false, queue: [] };
      this.locks.set(name, state);
    }
    const s = state;
    const free = s.queue.length === 0 && !s.writer && (mode === 'read' || s.readers === 0);
    if (free) {
      this.take(s, mode);
      return Promise.resolve(this.releaser(name, s, mode));
    }
    return new Promise((resolve) => {
      s.queue.push({
        mode,
        wake: () => {
          resolve(this.releaser(name, s, mode));
        },
      });
    });
  }

  /**
   * Takes several locks without deadlock: in a global (sorted) order, and a name given twice is
   * locked once, in the stronger mode.
   */
  async acquireAll(wanted: { name: string; mode: Mode }[]): Promise<Release> {
    const merged = new Map<string, Mode>();
    for (const { name, mode } of wanted) {
      merged.set(name, merged.get(name) === 'write' ? 'write' : mode);
    }
    const releases: Release[] = [];
    for (const name of [...merged.keys()].sort()) {
      releases.push(await this.acquire(name, merged.get(name) ?? 'write'));
    }
    return () => {
      for (const release of releases.reverse()) release();
    };
  }

  private take(s: LockState, mode: Mode): void {
    if (mode === 'write') s.writer = true;
    else s.readers++;
  }

  private releaser(name: string, s: LockState, mode: Mode): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (mode === 'write') s.writer = false;
      else s.readers--;
      this.wakeNext(name, s);
    };
  }

  private wakeNext(name: string, s: LockState): void {
    while (s.queue.length > 0 && !s.writer) {
      const next = s.queue[0];
      if (next === undefined) break;
      if (next.mode === 'write' && s.readers > 0) break;
      s.queue.shift();
      this.take(s, next.mode);
      next.wake();
      if (next.mode === 'write') break;
    }
    if (s.queue.length === 0 && !s.writer && s.readers === 0) this.locks.delete(name);
  }
}
