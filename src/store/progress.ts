/** Where progress goes; a subset of CommandContext. */
export interface ProgressSink {
  tty: boolean;
  quiet: boolean;
  json: boolean;
  stderr(text: string): void;
}

export interface Progress {
  add(bytes: number): void;
  done(): void;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;

/** A byte count for people: `512 B`, `1.5 KiB`, `12.3 MiB`, `120 MiB`, `1.0 GiB`. */
export function formatSize(bytes: number): string {
  let n = Math.max(0, Math.round(bytes));
  let unit = 0;
  while (unit < UNITS.length - 1 && n >= 1024) {
    n /= 1024;
    unit++;
  }
  if (unit === 0) return `${n} B`;
  const digits = n < 100 ? 1 : 0;
  // 1023.96 KiB would print as "1024.0 KiB": it is 1.0 MiB.
  if (Number(n.toFixed(digits)) >= 1024 && unit < UNITS.length - 1) return `1.0 ${UNITS[unit + 1]}`;
  return `${n.toFixed(digits)} ${UNITS[unit]}`;
}

/**
 * A one-line bar on a terminal, a plain line per 25% elsewhere (CI logs), nothing with --quiet
 * or --json. Hand-written because it is twenty lines: a dependency for it would pull in more
 * code than it replaces.
 */
export function createProgress(sink: ProgressSink, label: string, total: number): Progress {
  if (sink.quiet || sink.json) return { add() {}, done() {} };
  let seen = 0;
  let lastDraw = 0;
  let lastQuarter = 0;
  const draw = () => {
    const pct = total > 0 ? Math.min(1, seen / total) : 1;
    if (sink.tty) {
      const width = 30;
      const filled = Math.round(pct * width);
      sink.stderr(`\r${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${Math.floor(pct * 100)}% ${formatSize(seen)}/${formatSize(total)}\x1b[K`);
    } else {
      sink.stderr(`${label}: ${Math.floor(pct * 100)}% (${formatSize(seen)} of ${formatSize(total)})\n`);
    }
  };
  return {
    add(bytes) {
      seen += bytes;
      if (sink.tty) {
        const now = Date.now();
        if (now - lastDraw >= 100) {
          lastDraw = now;
          draw();
        }
      } else {
        const quarter = total > 0 ? Math.floor((seen / total) * 4) : 4;
        if (quarter > lastQuarter && quarter < 4) {
          lastQuarter = quarter;
          draw();
        }
      }
    },
    done() {
      seen = Math.max(seen, total);
      draw();
      if (sink.tty) sink.stderr('\n');
    },
  };
}
