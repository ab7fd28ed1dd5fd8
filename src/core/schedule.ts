/** A task run every `intervalMs` (never twice at once, never keeping the process alive); both
 * servers schedule their pruning with it. An interval of 0 turns the task off. */
export function every(intervalMs: number, task: () => Promise<unknown> | unknown): () => void {
  if (intervalMs <= 0) return () => {};
  let running = false;
  const timer = setInterval(async () => {
    if (running) return;
    running = true;
    try {
      await task();
    } catch {
      // the task reports its own failures; the next run tries again
    } finally {
      running = false;
    }
  }, intervalMs);
  (timer as { unref?: () => void }).unref?.();
  return () => clearInterval(timer);
}
