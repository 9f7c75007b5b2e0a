/**
 * A wait with a deadline on a promise that cannot be cancelled: its value when it settles within
 * `ms`, else `late` (the promise goes on unobserved; a rejection after the deadline is ignored).
 * The timer does not keep the process alive and is cleared when the promise wins.
 */
export async function inTime<T, L>(p: Promise<T>, ms: number, late: L): Promise<T | L> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<L>((resolve) => {
    timer = setTimeout(resolve, ms, late);
    timer.unref();
  });
  p.catch(() => {}); // settled after the deadline: nobody waits for it any more
  try {
    return await Promise.race([p, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
