import { headMacProblem, type ChainKeys } from './chain';
import type { EventStore } from './port';

export type HeadRekeying = Readonly<{ rekeyed: readonly string[]; unauthenticated: readonly string[]; invalid: readonly string[] }>;

/**
 * After a master key rotation: every chain head authenticated with an older master key is
 * authenticated again with the current one, once its MAC checks out under the old key (a head
 * that does not is reported, never laundered). Heads with no MAC are left for `audit checkpoint`,
 * which verifies their chains first.
 */
export const rekeyChainHeads = async (eventStore: EventStore, keys: ChainKeys): Promise<HeadRekeying> => {
  const rekeyed: string[] = [];
  const unauthenticated: string[] = [];
  const invalid: string[] = [];
  for (const tenantId of await eventStore.tenants()) {
    const head = await eventStore.chainHead(tenantId);
    if (!head) continue;
    if (!head.mac) {
      unauthenticated.push(tenantId);
      continue;
    }
    if (head.mac.startsWith(`${keys.current.id}:`)) continue;
    if (headMacProblem(keys, tenantId, head)) {
      invalid.push(tenantId);
      continue;
    }
    // False when an append got in first: that append wrote a current MAC.
    await eventStore.authenticateChainHead(tenantId, head);
    rekeyed.push(tenantId);
  }
  return { rekeyed, unauthenticated, invalid };
};
