import type { KeyObject } from 'node:crypto';
import type { EventStore } from '#platform/event-store/port';
import { canonical, headMacProblem, type ChainKeys } from '#platform/event-store/chain';
import { publicKeyId, signBytes, verifyBytes } from '#platform/crypto/signing';
import { verifyTenantChain, type TenantChainReport } from './replay';

/** One tenant's chain head as a checkpoint anchors it. */
export type CheckpointHead = Readonly<{
  tenantId: string;
  /** Position of the tenant's last event. */
  position: number;
  /** Hash of that event: it commits to the tenant's whole history before it. */
  hash: string;
  /** How many events the tenant had. */
  events: number;
  /** The time of the last event. */
  at: string | null;
}>;

/**
 * A signed statement of every tenant's chain head, kept outside the store (a file, a ticket, a
 * transparency log): whoever can rewrite the store cannot rewrite this, so a log rewritten whole,
 * its hashes recomputed, no longer extends it.
 */
export type Checkpoint = Readonly<{
  kind: 'notify-audit-checkpoint';
  version: 1;
  createdAt: string;
  /** Names the Ed25519 key that signed it (16 hex characters of the SHA-256 of its public key). */
  keyId: string;
  heads: readonly CheckpointHead[];
  /** Ed25519 over the canonical JSON of every other field, base64. */
  signature: string;
}>;

const signedBytes = (c: Omit<Checkpoint, 'signature'>): Buffer => Buffer.from(canonical(c), 'utf8');

export type CheckpointResult =
  | Readonly<{ ok: true; checkpoint: Checkpoint; authenticated: readonly string[] }>
  | Readonly<{ ok: false; broken: readonly TenantChainReport[] }>;

/**
 * Verifies every tenant's chain (a checkpoint is only worth signing over an intact log), gives
 * heads without a current MAC one (heads from before keyed heads, or from an older master key),
 * and signs the heads. Nothing is signed when a chain is broken.
 */
export const createCheckpoint = async (
  eventStore: EventStore,
  signingKey: KeyObject,
  options: Readonly<{ keys?: ChainKeys | null; now?: () => Date; onTenant?: (tenantId: string, report: TenantChainReport) => void }> = {},
): Promise<CheckpointResult> => {
  const heads: CheckpointHead[] = [];
  const broken: TenantChainReport[] = [];
  const authenticated: string[] = [];
  for (const tenantId of await eventStore.tenants()) {
    // Checked without keys first: a head that is merely unauthenticated (older rows) is intact.
    const report = await verifyTenantChain(eventStore, tenantId);
    options.onTenant?.(tenantId, report);
    if (!report.ok) {
      broken.push(report);
      continue;
    }
    const keys = options.keys;
    if (keys && report.head) {
      const problem = headMacProblem(keys, tenantId, report.head);
      const current = report.head.mac?.startsWith(`${keys.current.id}:`) ?? false;
      if (problem && report.head.mac) {
        // A MAC that does not check out is a rewrite, not an old row: refuse to anchor it.
        broken.push({ ...report, ok: false, firstBreak: { position: report.lastPosition, streamName: '', revision: -1, type: '', reason: problem } });
        continue;
      }
      if ((problem || !current) && (await eventStore.authenticateChainHead(tenantId, report.head))) authenticated.push(tenantId);
    }
    heads.push({ tenantId, position: report.lastPosition, hash: report.lastHash, events: report.checked, at: report.lastAt });
  }
  if (broken.length > 0) return { ok: false, broken };
  const unsigned = { kind: 'notify-audit-checkpoint' as const, version: 1 as const, createdAt: (options.now?.() ?? new Date()).toISOString(), keyId: publicKeyId(signingKey), heads };
  return { ok: true, checkpoint: { ...unsigned, signature: signBytes(signingKey, signedBytes(unsigned)) }, authenticated };
};

/** Parses a checkpoint file and checks its signature; throws with the reason otherwise. */
export const readCheckpoint = (text: string, verifyKey: KeyObject): Checkpoint => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error('the checkpoint is not JSON');
  }
  const c = parsed as Partial<Checkpoint>;
  if (c?.kind !== 'notify-audit-checkpoint' || c.version !== 1 || !Array.isArray(c.heads) || typeof c.signature !== 'string' || typeof c.createdAt !== 'string' || typeof c.keyId !== 'string') {
    throw new Error('the file is not a notify audit checkpoint (version 1)');
  }
  for (const h of c.heads) {
    if (typeof h?.tenantId !== 'string' || !Number.isSafeInteger(h.position) || !Number.isSafeInteger(h.events) || typeof h.hash !== 'string' || !/^[0-9a-f]{64}$/.test(h.hash)) {
      throw new Error('the checkpoint holds a malformed head');
    }
  }
  const { signature, ...unsigned } = c as Checkpoint;
  if (unsigned.keyId !== publicKeyId(verifyKey)) throw new Error(`the checkpoint was signed by key ${unsigned.keyId}, not by the configured key ${publicKeyId(verifyKey)}`);
  if (!verifyBytes(verifyKey, signedBytes(unsigned), signature)) throw new Error('the checkpoint\'s signature does not verify: the file was changed');
  return c as Checkpoint;
};
