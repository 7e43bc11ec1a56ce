/**
 * PURE: when a fleet finishes a set of tasks — longest first onto the slot that frees up first
 * (LPT list scheduling), which is how workers behave when they claim the biggest ready pack
 * first, and within 4/3 of the best schedule otherwise. Also the fleet rehearsal's "ideal":
 * max(total work / slots, longest task).
 */

/** The slot each task ran on and when every slot finished. */
export interface Schedule {
  /** When the last slot finishes. */
  makespan: number;
  /** Finish time of each slot. */
  slotEnds: number[];
}

/** Binary min-heap of [time, slot]. */
class Heap {
  readonly #a: [number, number][] = [];
  push(x: [number, number]): void {
    const a = this.#a;
    a.push(x);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const ai = a[i];
      const ap = a[p];
      if (ai === undefined || ap === undefined || ap[0] <= ai[0]) break;
      a[i] = ap;
      a[p] = ai;
      i = p;
    }
  }
  pop(): [number, number] | undefined {
    const a = this.#a;
    const top = a[0];
    const last = a.pop();
    if (a.length === 0 || last === undefined) return top;
    a[0] = last;
    for (let i = 0; ;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      const am = () => a[m]?.[0] ?? Infinity;
      if ((a[l]?.[0] ?? Infinity) < am()) m = l;
      if ((a[r]?.[0] ?? Infinity) < am()) m = r;
      if (m === i) break;
      const x = a[i];
      const y = a[m];
      if (x === undefined || y === undefined) break;
      a[i] = y;
      a[m] = x;
      i = m;
    }
    return top;
  }
}

/** Longest-first list scheduling of `durations` on `slots` identical slots. */
export function scheduleLongestFirst(durations: readonly number[], slots: number): Schedule {
  const n = Math.max(1, Math.floor(slots));
  const heap = new Heap();
  for (let s = 0; s < n; s++) heap.push([0, s]);
  const ends = new Array<number>(n).fill(0);
  for (const d of [...durations].sort((a, b) => b - a)) {
    const free = heap.pop();
    if (free === undefined) throw new Error('Internal error: empty slot heap');
    const end = free[0] + d;
    ends[free[1]] = end;
    heap.push([end, free[1]]);
  }
  return { makespan: Math.max(0, ...ends), slotEnds: ends };
}

/** The lower bound no schedule beats: max(total work / slots, longest task). */
export function idealMakespan(durations: readonly number[], slots: number): number {
  const total = durations.reduce((a, b) => a + b, 0);
  return Math.max(total / Math.max(1, slots), Math.max(0, ...durations));
}
