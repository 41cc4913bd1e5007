/**
 * A command cancelled by SIGINT or SIGTERM leaves nothing half-done (SPEC v2 §5, v3 §14): what
 * writes something that must not be left partial registers how to undo it for as long as it
 * writes, and the CLI's handler (`exitOnSignal`) runs every registered undo before it exits 130
 * (SIGINT) or 143 (SIGTERM), the codes a shell gives a command killed by those signals. Undoing
 * is bounded by UNDO_MS; what a SIGKILL leaves is for `gc` and for the caches' own repair.
 */

type Undo = () => void | Promise<void>;

/** How long the undos may take before the process exits anyway. */
const UNDO_MS = 10_000;

const undos = new Set<Undo>();
let cancelledBy: NodeJS.Signals | undefined;

/** Registers `undo` until the returned function is called. */
export function onCancel(undo: Undo): () => void {
  undos.add(undo);
  return () => undos.delete(undo);
}

/**
 * Runs `work` so that a cancellation stops it and lets it clean up: `work` gets an AbortSignal
 * that aborts on SIGINT/SIGTERM, and the process exits only once `work` settled (its own
 * `finally` blocks removed what it wrote) and `undo`, when given, ran.
 */
export async function cancellable<T>(work: (signal: AbortSignal) => Promise<T>, undo?: Undo): Promise<T> {
  const controller = new AbortController();
  const running = work(controller.signal);
  const off = onCancel(async () => {
    controller.abort();
    await Promise.allSettled([running, undo?.()]);
  });
  try {
    return await running;
  } finally {
    off();
  }
}

/** The signal that cancelled this process, once one did. */
export function cancelled(): NodeJS.Signals | undefined {
  return cancelledBy;
}

/** The exit code of a process cancelled by `signal`. */
export function cancelledExitCode(signal: NodeJS.Signals): number {
  return signal === 'SIGINT' ? 130 : 143;
}

/**
 * Installs the handler of the CLI process: on the first SIGINT or SIGTERM, every registered undo
 * runs, then the process exits 130 or 143; a later signal does not cut the undos short.
 */
export function exitOnSignal(): void {
  const onSignal = (signal: NodeJS.Signals) => {
    if (cancelledBy) return;
    cancelledBy = signal;
    const exit = () => process.exit(cancelledExitCode(signal));
    setTimeout(exit, UNDO_MS).unref();
    Promise.allSettled([...undos].map(async (u) => u())).then(exit, exit);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
