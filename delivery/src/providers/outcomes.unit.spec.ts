import { describe, expect, it } from 'vitest';
import { mayHaveArrived, ProviderUnavailableError, settle, transient } from './outcomes';

describe('mayHaveArrived', () => {
  it.each([
    [Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), true],
    [Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), true],
    [Object.assign(new Error('timeout of 500ms exceeded'), { code: 'ECONNABORTED' }), true],
    [Object.assign(new Error('Error while making request: timeout.'), { code: 'app/network-timeout' }), true],
    [Object.assign(new Error('Connection timeout'), { code: 'ETIMEDOUT' }), true],
    [Object.assign(new Error('Request timed out'), { name: 'TimeoutError' }), true],
    [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:443'), { code: 'ECONNREFUSED' }), false],
    [Object.assign(new Error('getaddrinfo ENOTFOUND api.example.com'), { code: 'ENOTFOUND' }), false],
    [new RangeError('600 messages, at most 500'), false],
    ['a string', false],
    [null, false],
  ])('%s → %s', (err, expected) => {
    expect(mayHaveArrived(err)).toBe(expected);
  });
});

describe('settle', () => {
  it('rejects with the outcomes, flags kept, when every failure is the provider’s', () => {
    const drafts = [transient('a', 'timeout', { providerFault: true, maybeDelivered: true }), transient('b', '503', { providerFault: true, retryAfterMs: 1000 })];
    let thrown: unknown;
    try {
      settle('p', drafts);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(ProviderUnavailableError);
    expect((thrown as ProviderUnavailableError).outcomes).toEqual([
      { deliveryId: 'a', outcome: 'transient', reason: 'timeout', maybeDelivered: true },
      { deliveryId: 'b', outcome: 'transient', reason: '503', retryAfterMs: 1000 },
    ]);
  });
});
