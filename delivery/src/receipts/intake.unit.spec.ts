import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { PersonalDataCipher } from '#platform/crypto/personal-data';
import { createReceiptIntake } from './intake';

describe('receipt intake', () => {
  it("reads an integration's state once per period for a run of callbacks, and again after it", async () => {
    let t = 0;
    let reads = 0;
    const commands = {
      integrations: { state: async () => ((reads++), { integrations: new Map() }) },
      receipts: { record: async () => undefined },
    } as never;
    const intake = createReceiptIntake({ commands, cipher: {} as PersonalDataCipher, logger: pino({ level: 'silent' }), credentialsTtlMs: 1_000, now: () => t });
    const callback = { vendor: 'twilio', owner: 'acme', name: 'sms', url: 'https://x/webhooks/twilio/acme/sms', headers: {}, body: '' };
    const statuses = await Promise.all(Array.from({ length: 20 }, () => intake.handle(callback)));
    // Unknown integration: refused every time, read once.
    expect(statuses.every((s) => s === 403)).toBe(true);
    expect(reads).toBe(1);
    t = 999;
    await intake.handle(callback);
    expect(reads).toBe(1);
    t = 1_000;
    await intake.handle(callback);
    expect(reads).toBe(2);
    // Another integration has its own entry.
    await intake.handle({ ...callback, name: 'other' });
    expect(reads).toBe(3);
  });
});
