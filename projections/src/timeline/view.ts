import type { DeliveryStep, StepCode, StoredStep, TimelineEntry, TimelineEntryDocument } from './document';

type Step = DeliveryStep['step'];
type StoredStepCode = StepCode;

const STEPS: Readonly<Record<StoredStepCode, Step>> = { d: 'dispatched', a: 'attempted', s: 'succeeded', f: 'failed', x: 'expired', D: 'delivered', B: 'bounced', R: 'deferred' };
const CODES = Object.fromEntries(Object.entries(STEPS).map(([code, step]) => [step, code])) as Readonly<Record<Exclude<Step, 'requested'>, StoredStepCode>>;
const RECEIPTS = new Set<StoredStepCode>(['D', 'B', 'R']);

/** The delivery recorder's actor and request id: a delivery entry stores them only when they differ. */
export const DELIVERY_ACTOR = 'system';
export const deliveryRequestId = (notificationId: string): string => `delivery-${notificationId}`;

/** The provider a stored step names, following "the previous step's" back. */
const providerAt = (steps: readonly StoredStep[], index: number): string | null => {
  for (let i = index; i >= 0; i--) {
    const p = steps[i]!.p;
    if (p !== 1) return p ?? null;
  }
  return null;
};

/** The provider of a delivery's last stored step, which the next step may name by reference. */
export const lastProvider = (steps: readonly StoredStep[]): string | null => providerAt(steps, steps.length - 1);

/** A step as stored after `previous` (see StoredStep); `base` is the entry's `at`. */
export const encodeStep = (step: DeliveryStep, base: string, previous: readonly StoredStep[]): StoredStep => {
  if (step.step === 'requested') throw new Error('the requested step is not stored: the entry is the request');
  const ms = Date.parse(step.at) - Date.parse(base);
  const t = Number.isSafeInteger(ms) && new Date(Date.parse(base) + ms).toISOString() === step.at ? ms : step.at;
  return {
    c: CODES[step.step],
    t,
    ...(step.provider !== undefined ? { p: step.provider === lastProvider(previous) ? 1 : step.provider } : {}),
    ...(step.latencyMs !== undefined ? { l: step.latencyMs } : {}),
    ...(step.outcome !== undefined ? { o: step.outcome } : {}),
    ...(step.reason !== undefined ? { r: step.reason } : {}),
    ...(step.possibleCopies !== undefined ? { n: step.possibleCopies } : {}),
  };
};

const decodeStep = (steps: readonly StoredStep[], index: number, base: string): DeliveryStep => {
  const { c, t, p, l, o, r, n } = steps[index]!;
  const provider = p === undefined ? null : providerAt(steps, index);
  return {
    step: STEPS[c],
    at: typeof t === 'number' ? new Date(Date.parse(base) + t).toISOString() : t,
    ...(provider !== null ? { provider } : {}),
    ...(l !== undefined ? { latencyMs: l } : {}),
    ...(o !== undefined ? { outcome: o } : {}),
    ...(r !== undefined ? { reason: r } : {}),
    ...(n !== undefined ? { possibleCopies: n } : {}),
  };
};

/** A delivery entry's steps after the request, as stored, whatever the entry's format. */
export const storedSteps = (doc: TimelineEntryDocument): readonly StoredStep[] => {
  if (doc.s) return doc.s;
  const out: StoredStep[] = [];
  for (const step of doc.steps ?? []) if (step.step !== 'requested') out.push(encodeStep(step, doc.at, out));
  return out;
};

/** The provider's last word after accepting, from the receipts among the steps. */
export const receiptOf = (steps: readonly StoredStep[]): 'delivered' | 'bounced' | 'deferred' | undefined => {
  for (let i = steps.length - 1; i >= 0; i--) {
    const code = steps[i]!.c;
    if (RECEIPTS.has(code)) return STEPS[code] as 'delivered' | 'bounced' | 'deferred';
  }
  return undefined;
};

const describeDelivery = (entry: TimelineEntry): string => {
  const attempts = (entry.steps ?? []).filter((s) => s.step === 'attempted').length;
  const via = entry.provider ? ` via ${entry.provider}` : '';
  const receipt = entry.receipt ? `, ${entry.receipt}` : '';
  const copies = entry.possibleCopies !== undefined && entry.possibleCopies > 1 ? ` (up to ${entry.possibleCopies} copies)` : '';
  return `notification ${entry.notificationId} to device ${entry.deviceId} (${entry.channel}): ${entry.status}${via}${receipt}, ${attempts} attempt${attempts === 1 ? '' : 's'}${entry.possiblyDuplicate ? `, possibly duplicated${copies}` : ''}`;
};

/**
 * An entry as the timeline shows it: a delivery's every step (the request first), its summary,
 * actor and request id, computed from what is stored; older entries that stored them read alike.
 */
export const timelineEntry = (doc: TimelineEntryDocument): TimelineEntry => {
  const { s, steps: older, summary, actor, requestId, ...rest } = doc;
  if (doc.type !== 'Delivery') return { ...rest, actor: actor ?? '', requestId: requestId ?? '', summary: summary ?? '' };
  const stored = s ?? storedSteps(doc);
  const steps = older ?? [{ step: 'requested' as const, at: doc.at }, ...stored.map((_, i) => decodeStep(stored, i, doc.at))];
  const receipt = doc.receipt ?? receiptOf(stored);
  const entry: TimelineEntry = {
    ...rest,
    actor: actor ?? DELIVERY_ACTOR,
    requestId: requestId ?? deliveryRequestId(doc.notificationId ?? ''),
    provider: doc.provider ?? null,
    ...(receipt ? { receipt } : {}),
    steps,
    summary: '',
  };
  return { ...entry, summary: describeDelivery(entry) };
};
