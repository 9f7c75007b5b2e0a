import type { Clock, TimerHandle } from './clock.js';

/**
 * A wait with a deadline on a promise that cannot be cancelled: its value when it settles within
 * `ms`, else `late` (the promise goes on unobserved; a rejection after the deadline is ignored).
 * The timer does not keep the process alive and is cleared when the promise wins. `clock`: the
 * caller's timers (a simulated clock), else the process's.
 */
export async function inTime<T, L>(
  p: Promise<T>,
  ms: number,
  late: L,
  clock?: Pick<Clock, 'setTimer' | 'clearTimer'>,
): Promise<T | L> {
  let timer: NodeJS.Timeout | undefined;
  let handle: TimerHandle | undefined;
  const deadline = new Promise<L>((resolve) => {
    if (clock !== undefined) {
      handle = clock.setTimer(() => resolve(late), ms, { keepAlive: false });
      return;
    }
    timer = setTimeout(resolve, ms, late);
    timer.unref();
  });
  p.catch(() => {}); // settled after the deadline: nobody waits for it any more
  try {
    return await Promise.race([p, deadline]);
  } finally {
    if (handle !== undefined) clock?.clearTimer(handle);
    clearTimeout(timer);
  }
}
