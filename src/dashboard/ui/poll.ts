/**
 * Polling for live pages: call, wait `intervalMs` after the answer, call again, until the page
 * goes away. One call in flight at a time, so a slow node is never asked faster than it answers.
 */
import { useEffect, useState } from 'preact/hooks';
import { describeError } from './api.js';

export function usePoll<T>(
  load: () => Promise<T>,
  intervalMs: number,
): { data: T | null; error: { code: string; message: string } | null } {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<{ code: string; message: string } | null>(null);
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      try {
        const v = await load();
        if (stopped) return;
        setData(v);
        setError(null);
      } catch (e) {
        if (stopped) return;
        setError(describeError(e));
      }
      if (!stopped) timer = setTimeout(() => void tick(), intervalMs);
    };
    void tick();
    return () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
    };
  }, []);
  return { data, error };
}
