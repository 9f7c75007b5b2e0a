/**
 * Progress of a long operation (a backup download or restore): on a terminal one line redrawn in
 * place with bytes, rate and time left; otherwise a plain line every `intervalMs` and one at the
 * end, so logs of scripts stay readable.
 */
export interface Progress {
  update(bytes: number): void;
  done(): void;
}

const MiB = 1024 * 1024;

export function createProgress(
  label: string,
  totalBytes: number | null,
  out: NodeJS.WriteStream = process.stderr,
  intervalMs = 5000,
): Progress {
  const tty = out.isTTY === true;
  const startedMs = performance.now();
  let lastMs = 0;
  let bytes = 0;
  const line = (): string => {
    const secs = Math.max(0.001, (performance.now() - startedMs) / 1000);
    const rate = bytes / secs;
    const of = totalBytes === null ? '' : ` / ${(totalBytes / MiB).toFixed(1)} MiB`;
    const left =
      totalBytes === null || rate <= 0
        ? ''
        : `, ${Math.max(0, Math.ceil((totalBytes - bytes) / rate))} s left`;
    return `${label}: ${(bytes / MiB).toFixed(1)} MiB${of}, ${(rate / MiB).toFixed(1)} MiB/s${left}`;
  };
  return {
    update(n) {
      bytes = n;
      const now = performance.now();
      if (now - lastMs < (tty ? 200 : intervalMs)) return;
      lastMs = now;
      out.write(tty ? `\r${line()}\x1b[K` : `${line()}\n`);
    },
    done() {
      out.write(tty ? `\r${line()}\x1b[K\n` : `${line()}\n`);
    },
  };
}
