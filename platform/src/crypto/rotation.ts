import type { KeyReplacement, KeyVault } from '../key-vault/port';
import type { PersonalDataCipher } from './personal-data';

/** Where a rotation stands, saved after every batch so an interrupted one resumes. */
export type RotationState = Readonly<{
  /** The master key the keys are being wrapped with: a state for another one is not resumed. */
  masterKeyId: string;
  /** The last key id handled in this pass (null: from the start). */
  cursor: string | null;
  /** Passes over the vault so far: the first rewraps, later ones sweep up keys written meanwhile by processes still on the old key. */
  pass: number;
  rewrapped: number;
  finished: boolean;
}>;

export type RotationProgress = Readonly<{ pass: number; scanned: number; rewrapped: number; total: number }>;

export type RotationResult = Readonly<{
  rewrapped: number;
  /** Keys no master key of this process opens: left as they are, named here. */
  unreadable: readonly string[];
  /** Whether every key in the vault is now wrapped by the current master key. */
  complete: boolean;
  passes: number;
}>;

export type RotationDeps = Readonly<{
  vault: KeyVault;
  cipher: PersonalDataCipher;
  batchSize?: number;
  state?: Readonly<{ load: () => Promise<RotationState | null>; save: (s: RotationState) => Promise<void> }>;
  onProgress?: (p: RotationProgress) => void;
  /** Called after every batch (tests slow a rotation down with it). */
  afterBatch?: () => Promise<void>;
  signal?: AbortSignal;
  maxPasses?: number;
}>;

/**
 * Wraps every data key again with the current master key, in batches: each batch is listed in
 * key id order, unwrapped with whichever master key wrapped it, wrapped with the current one and
 * written back with compare and set (a key destroyed meanwhile stays destroyed; one changed
 * meanwhile is left for the next pass). The state is saved after each batch, so a rotation
 * stopped half-way resumes where it was. When a pass ends, another sweeps the whole vault for
 * keys still under an older master key (written by a process not yet restarted with the new
 * one), until one finds none: then the old master key can go.
 */
export const rotateMasterKey = async (deps: RotationDeps): Promise<RotationResult> => {
  const batchSize = deps.batchSize ?? 500;
  const target = deps.cipher.masterKeyId;
  const saved = await deps.state?.load();
  let state: RotationState = saved && saved.masterKeyId === target && !saved.finished
    ? saved
    : { masterKeyId: target, cursor: null, pass: 1, rewrapped: 0, finished: false };
  const maxPasses = deps.maxPasses ?? 5;
  const unreadable = new Set<string>();
  const total = await deps.vault.count();
  let scanned = 0;
  for (;;) {
    let rewrappedThisPass = 0;
    let staleThisPass = 0;
    for (;;) {
      if (deps.signal?.aborted) throw new Error('rotation interrupted; run it again to resume');
      const page = await deps.vault.list(state.cursor, batchSize);
      const replacements: KeyReplacement[] = [];
      for (const { keyId, wrapped } of page) {
        if (deps.cipher.isCurrent(wrapped)) continue;
        staleThisPass++;
        try {
          replacements.push({ keyId, expected: wrapped, wrapped: deps.cipher.rewrap(keyId, wrapped)! });
        } catch {
          unreadable.add(keyId);
        }
      }
      const replaced = await deps.vault.replaceMany(replacements);
      rewrappedThisPass += replaced;
      scanned += page.length;
      state = { ...state, cursor: page.at(-1)?.keyId ?? state.cursor, rewrapped: state.rewrapped + replaced };
      await deps.state?.save(state);
      deps.onProgress?.({ pass: state.pass, scanned, rewrapped: state.rewrapped, total });
      await deps.afterBatch?.();
      if (page.length < batchSize) break;
    }
    // Done when a pass found nothing left to rewrap (but what no key of ours opens).
    const complete = staleThisPass - unreadable.size <= 0 && rewrappedThisPass === 0;
    if (complete || state.pass >= maxPasses) {
      const result = { rewrapped: state.rewrapped, unreadable: [...unreadable].sort(), complete: complete && unreadable.size === 0, passes: state.pass };
      state = { ...state, finished: result.complete };
      await deps.state?.save(state);
      return result;
    }
    state = { ...state, cursor: null, pass: state.pass + 1 };
    unreadable.clear();
  }
};
