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

const MiB = 1024 * 1024;

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
  const fmt = (n: number) => (n / MiB).toFixed(n < 10 * MiB ? 1 : 0);
  const draw = () => {
    const pct = total > 0 ? Math.min(1, seen / total) : 1;
    if (sink.tty) {
      const width = 30;
      const filled = Math.round(pct * width);
      sink.stderr(`\r${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${Math.floor(pct * 100)}% ${fmt(seen)}/${fmt(total)} MiB`);
    } else {
      sink.stderr(`${label}: ${Math.floor(pct * 100)}% (${fmt(seen)} of ${fmt(total)} MiB)\n`);
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
