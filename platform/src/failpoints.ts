/**
 * Crash points for recovery tests: `FAILPOINTS=shred:after-decision` makes the process kill
 * itself with SIGKILL at that point, as a power cut would. Unset in production, where this is a
 * string comparison per call.
 */
const armed = new Set((process.env['FAILPOINTS'] ?? '').split(',').map((s) => s.trim()).filter(Boolean));

export const failpoint = (name: string): void => {
  if (armed.has(name)) process.kill(process.pid, 'SIGKILL');
};
