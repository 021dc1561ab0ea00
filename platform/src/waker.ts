/**
 * The sleep of a polling loop that can be cut short: `notify` wakes it at once, and a notify
 * that comes while the loop is busy is remembered, so the next `sleep` returns immediately
 * instead of losing the wake-up and waiting a whole poll.
 */
export class Waker {
  private wake: (() => void) | null = null;
  private pending = false;

  constructor(private readonly pollMs: number) {}

  notify = (): void => {
    this.pending = true;
    this.wake?.();
  };

  /** Whether a notify came since the last `consume`, without consuming it. */
  get woken(): boolean {
    return this.pending;
  }

  /** True when something happened since the last sleep (call before reading). */
  consume(): boolean {
    const was = this.pending;
    this.pending = false;
    return was;
  }

  async sleep(): Promise<void> {
    if (this.pending) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.pollMs);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wake = null;
  }
}
