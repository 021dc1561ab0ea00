import fs from 'node:fs';
import path from 'node:path';
import type { App } from './app';
import { rotateMasterKey, type RotationProgress, type RotationResult, type RotationState } from '#platform/crypto/rotation';
import { rekeyChainHeads, type HeadRekeying } from '#platform/event-store/heads';
import { writePrivateFile } from '#platform/private-file';

export class KeysUsageError extends Error {}

export type KeysArgs = Readonly<{ command: 'rotate'; batchSize: number; state: string | null }>;

export const KEYS_USAGE = `usage:
  notify keys rotate [--batch <n>] [--state <file>]
      wraps every user's data key again with MASTER_KEY; run it with MASTER_KEY (new) and
      MASTER_KEY_PREVIOUS (old) set, as every running process must be. Resumable: run it again
      after an interruption. Progress is saved in --state (default DATA_DIR/key-rotation.json).`;

export const parseKeysArgs = (argv: readonly string[]): KeysArgs => {
  const [command, ...rest] = argv;
  if (command !== 'rotate') throw new KeysUsageError(`unknown keys command "${command ?? ''}"`);
  const flags = new Map<string, string>();
  for (let i = 0; i < rest.length; i += 2) {
    const flag = rest[i]!;
    const value = rest[i + 1];
    if (!['--batch', '--state'].includes(flag)) throw new KeysUsageError(`unknown option ${flag}`);
    if (value === undefined || value.startsWith('--')) throw new KeysUsageError(`${flag} needs a value`);
    flags.set(flag, value);
  }
  const batch = flags.get('--batch') ?? '500';
  if (!/^\d+$/.test(batch) || Number(batch) < 1 || Number(batch) > 10_000) throw new KeysUsageError(`--batch must be an integer from 1 to 10000, got "${batch}"`);
  return { command, batchSize: Number(batch), state: flags.get('--state') ?? null };
};

/** A one-line progress bar on a terminal; silent otherwise (pipes, CI logs). */
const bar = (stream: NodeJS.WriteStream) => {
  let last = 0;
  return {
    update: (p: RotationProgress) => {
      if (!stream.isTTY || Date.now() - last < 100) return;
      last = Date.now();
      const share = p.total === 0 ? 1 : Math.min(1, p.scanned / p.total);
      stream.write(`\r[${'#'.repeat(Math.round(share * 30)).padEnd(30, '-')}] ${(share * 100).toFixed(0).padStart(3)}%  pass ${p.pass}  ${p.scanned.toLocaleString('en')} keys read, ${p.rewrapped.toLocaleString('en')} wrapped again `);
    },
    done: () => {
      if (stream.isTTY) stream.write('\n');
    },
  };
};

export type KeysOutcome = Readonly<{ rotation: RotationResult; heads: HeadRekeying }>;

/** Rotates, then re-authenticates the audit chain's heads with the new master key. */
export const runKeysRotate = async (
  app: Pick<App, 'vault' | 'cipher' | 'eventStore' | 'chainKeys' | 'config'>,
  args: KeysArgs,
  stderr: NodeJS.WriteStream = process.stderr,
  options: Readonly<{ afterBatch?: () => Promise<void>; signal?: AbortSignal }> = {},
): Promise<KeysOutcome> => {
  const file = args.state ?? path.join(app.config.dataDir, 'key-rotation.json');
  const progress = bar(stderr);
  const rotation = await rotateMasterKey({
    vault: app.vault,
    cipher: app.cipher,
    batchSize: args.batchSize,
    state: {
      load: async () => (fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as RotationState) : null),
      save: async (s) => writePrivateFile(file, JSON.stringify(s) + '\n'),
    },
    onProgress: progress.update,
    ...(options.afterBatch ? { afterBatch: options.afterBatch } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  progress.done();
  const heads = rotation.complete ? await rekeyChainHeads(app.eventStore, app.chainKeys) : { rekeyed: [], unauthenticated: [], invalid: [] };
  return { rotation, heads };
};

export const describeOutcome = (o: KeysOutcome, masterKeyId: string): string => {
  const lines = [`${o.rotation.rewrapped} data keys wrapped again with master key ${masterKeyId} (${o.rotation.passes} pass${o.rotation.passes === 1 ? '' : 'es'})`];
  if (o.rotation.unreadable.length > 0) lines.push(`${o.rotation.unreadable.length} keys open with no master key this process has (left as they are): ${o.rotation.unreadable.slice(0, 10).join(', ')}${o.rotation.unreadable.length > 10 ? ', ...' : ''}`);
  if (o.heads.rekeyed.length > 0) lines.push(`audit chain heads authenticated with the new key: ${o.heads.rekeyed.length}`);
  if (o.heads.invalid.length > 0) lines.push(`chain heads whose MAC does not check out (run notify audit verify): ${o.heads.invalid.join(', ')}`);
  if (o.heads.unauthenticated.length > 0) lines.push(`chain heads with no MAC (notify audit checkpoint authenticates them): ${o.heads.unauthenticated.join(', ')}`);
  lines.push(o.rotation.complete
    ? 'done: every data key is wrapped by MASTER_KEY; MASTER_KEY_PREVIOUS can be removed from every process'
    : 'not finished: some keys are still wrapped by another master key; keep MASTER_KEY_PREVIOUS and run it again');
  return lines.join('\n') + '\n';
};
