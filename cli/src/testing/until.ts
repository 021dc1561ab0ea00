/**
 * Polls `check` every `everyMs` until it holds, and answers how long that took. Throws after `ms`,
 * naming `what` and the error the last check threw, if it threw: a check that throws counts as
 * not yet (a process restarting refuses connections for a while).
 */
export const until = async (check: () => Promise<boolean> | boolean, ms: number, what = 'the condition', everyMs = 50): Promise<number> => {
  const start = Date.now();
  for (;;) {
    let failure: unknown = null;
    try {
      if (await check()) return Date.now() - start;
    } catch (e) {
      failure = e;
    }
    if (Date.now() - start > ms) {
      const last = failure === null ? '' : `; the last check threw: ${failure instanceof Error ? failure.message : String(failure)}`;
      throw new Error(`timed out after ${ms} ms waiting for ${what}${last}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
};
