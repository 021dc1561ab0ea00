import { MailService } from '@sendgrid/mail';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SendgridProvider } from './email/sendgrid/sendgrid-provider';
import { classifySmtpError, type SmtpError } from './email/smtp/smtp-provider';
import { classifyApnsFailure } from './ios/apns/apns-provider';
import { accepted, credentialsRejected, mayHaveArrived, ProviderUnavailableError, settle, transient, type Draft } from './outcomes';
import { classifyFcmError } from './shared/fcm-provider';
import { classifySnsError } from './sms/sns/sns-provider';
import { classifyTwilioError } from './sms/twilio/twilio-provider';

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

describe('settle with rejected credentials', () => {
  it('counts them as provider faults: alone they reject, flagged; beside an accepted message they resolve', () => {
    const rejected = credentialsRejected('a', 'twilio 20003');
    expect(rejected).toEqual({ outcome: { deliveryId: 'a', outcome: 'transient', reason: 'twilio 20003', credentialsRejected: true }, providerFault: true });
    // Even when a caller says otherwise, refused credentials are the provider's side.
    expect(transient('b', 'x', { providerFault: false, credentialsRejected: true }).providerFault).toBe(true);
    expect(() => settle('p', [rejected])).toThrow(ProviderUnavailableError);
    expect(settle('p', [rejected, accepted('c')])).toEqual([rejected.outcome, { deliveryId: 'c', outcome: 'accepted' }]);
  });
});

/*
 * Classification per vendor: what the account's credentials being refused looks like at each, as
 * opposed to a bad device or an outage; and reasons built from codes, never the provider's text.
 */
const kinds = (d: Draft) =>
  d.outcome.outcome === 'transient'
    ? { kind: d.outcome.credentialsRejected ? 'credentials' : d.providerFault ? 'fault' : 'retry', reason: d.outcome.reason }
    : d.outcome.outcome === 'permanent'
      ? { kind: d.outcome.invalidDevice ? 'device' : 'permanent', reason: d.outcome.reason }
      : { kind: 'accepted', reason: '' };

describe('APNs', () => {
  it.each([
    [403, 'InvalidProviderToken', 'credentials', 'InvalidProviderToken'],
    [403, 'MissingProviderToken', 'credentials', 'MissingProviderToken'],
    [403, 'BadCertificate', 'credentials', 'BadCertificate'],
    [403, 'ExpiredProviderToken', 'fault', 'apns 403 ExpiredProviderToken'],
    [400, 'BadDeviceToken', 'device', 'apns 400 BadDeviceToken'],
    [410, 'Unregistered', 'device', 'apns 410 Unregistered'],
    [400, 'DeviceTokenNotForTopic', 'device', 'apns 400 DeviceTokenNotForTopic'],
    [400, 'TopicDisallowed', 'permanent', 'apns 400 TopicDisallowed'],
    [429, 'TooManyRequests', 'retry', 'apns 429 TooManyRequests'],
    [503, 'ServiceUnavailable', 'fault', 'apns 503 ServiceUnavailable'],
    [500, undefined, 'fault', 'apns 500 no reason'],
    [400, 'not a token: ab12cd34', 'permanent', 'apns 400 no reason'],
  ] as const)('%i %s → %s', (status, reason, kind, text) => {
    expect(kinds(classifyApnsFailure('d', status, reason))).toEqual({ kind, reason: text });
  });
});

describe('FCM', () => {
  const err = (code: string, message = 'x') => Object.assign(new Error(message), { code });
  it.each([
    [err('messaging/third-party-auth-error', 'Request had invalid authentication credentials. Expected OAuth 2 access token'), 'credentials', 'UNAUTHENTICATED'],
    [err('messaging/third-party-auth-error', 'Auth error from APNS or Web Push Service'), 'credentials', 'THIRD_PARTY_AUTH_ERROR'],
    [err('messaging/authentication-error'), 'credentials', 'UNAUTHENTICATED'],
    [err('messaging/mismatched-credential', "Permission 'cloudmessaging.messages.create' denied on resource"), 'credentials', 'PERMISSION_DENIED'],
    [err('messaging/mismatched-credential', 'SenderId mismatch'), 'permanent', 'fcm messaging/mismatched-credential: token belongs to another sender'],
    [err('app/invalid-credential', 'failed to fetch a valid Google OAuth2 access token with the following error: "invalid_grant: Invalid JWT Signature."'), 'credentials', 'invalid_grant'],
    [err('app/invalid-credential', 'Error fetching access token: getaddrinfo ENOTFOUND oauth2.googleapis.com'), 'fault', expect.stringMatching(/^fcm app\/invalid-credential: .*ENOTFOUND/)],
    [err('messaging/registration-token-not-registered', 'Requested entity was not found.'), 'device', 'fcm messaging/registration-token-not-registered: token no longer registered'],
    [err('messaging/invalid-argument', 'The registration token is not a valid FCM registration token'), 'device', 'fcm messaging/invalid-argument: invalid registration token'],
    [err('messaging/invalid-argument', "Invalid value at 'message.data[0].value' (TYPE_STRING), \"ann@example.com\""), 'permanent', 'fcm messaging/invalid-argument: request refused'],
    [err('messaging/message-rate-exceeded'), 'retry', 'fcm messaging/message-rate-exceeded: sending too fast'],
    [err('messaging/server-unavailable'), 'fault', 'fcm messaging/server-unavailable: server unavailable'],
    [err('messaging/unknown-error', 'Raw server response: "{...token tok-secret...}"'), 'fault', 'fcm messaging/unknown-error: failed'],
  ])('%o → %s', (error, kind, reason) => {
    expect(kinds(classifyFcmError('d', error, 1000))).toEqual({ kind, reason });
  });
});

describe('SendGrid', () => {
  const provider = () => new SendgridProvider({ apiKey: 'SG.x', from: 'notify@example.com' });
  const refused = (code: number, errors: unknown[] = []) =>
    Object.assign(new Error('Forbidden'), { code, response: { headers: {}, body: { errors } } });
  afterEach(() => vi.restoreAllMocks());

  it.each([401, 403])('%i → credentials rejected, "sendgrid %i"', async (status) => {
    vi.spyOn(MailService.prototype, 'send').mockRejectedValue(refused(status, [{ message: 'The provided authorization grant is invalid', field: null }]));
    const err = await provider().send([{ deliveryId: 'd', address: 'ann@example.com', text: 't', expiresAt: 0 }]).catch((e: unknown) => e);
    expect((err as ProviderUnavailableError).outcomes).toEqual([{ deliveryId: 'd', outcome: 'transient', reason: `sendgrid ${status}`, credentialsRejected: true }]);
  });

  it('a 400 names the fields at fault, not SendGrid’s messages', async () => {
    vi.spyOn(MailService.prototype, 'send').mockRejectedValue(refused(400, [{ message: 'The from address ann@example.com is not verified', field: 'from' }]));
    const out = await provider().send([{ deliveryId: 'd', address: 'ann@example.com', text: 't', expiresAt: 0 }]);
    expect(out).toEqual([{ deliveryId: 'd', outcome: 'permanent', invalidDevice: false, reason: 'sendgrid 400 from: request refused' }]);
  });
});

describe('SMTP', () => {
  const smtpErr = (responseCode: number | undefined, response: string, more: Partial<SmtpError> = {}): SmtpError =>
    Object.assign(new Error(`${responseCode} ${response}`), { responseCode, response: `${responseCode} ${response}`, ...more });
  it.each([
    [smtpErr(535, '5.7.8 Authentication credentials invalid', { code: 'EAUTH', command: 'AUTH PLAIN' }), 'credentials', 'smtp 535'],
    [smtpErr(534, '5.7.9 Application-specific password required', { code: 'EAUTH', command: 'AUTH LOGIN' }), 'credentials', 'smtp 534'],
    [smtpErr(550, '5.1.1 <ann@example.com>: Recipient address rejected', { code: 'EENVELOPE', command: 'RCPT TO' }), 'device', 'smtp 550 5.1.1: recipient refused'],
    [smtpErr(554, '5.7.1 Message rejected as spam', { code: 'EMESSAGE', command: 'DATA' }), 'permanent', 'smtp 554 5.7.1: refused'],
    [smtpErr(451, '4.7.1 Rate limit exceeded for <ann@example.com>', { command: 'RCPT TO' }), 'retry', 'smtp 451 4.7.1: try again later'],
    [smtpErr(421, '4.3.2 Service not available', { command: 'CONN' }), 'fault', 'smtp 421 4.3.2: service not available'],
  ])('%s → %s', (error, kind, reason) => {
    const d = classifySmtpError('d', error, 'ann@example.com');
    expect(kinds(d)).toEqual({ kind, reason });
  });
  it('a connection error without a reply keeps its code, with the address cut out', () => {
    const d = classifySmtpError('d', Object.assign(new Error('Connection closed while sending to ann@example.com'), { code: 'ECONNECTION' }), 'ann@example.com');
    expect(kinds(d)).toEqual({ kind: 'fault', reason: 'smtp ECONNECTION: Connection closed while sending to <address>' });
  });
});

describe('Twilio', () => {
  it.each([
    [401, 20003, 'credentials', 'twilio 20003'],
    [403, 20005, 'credentials', 'twilio 20005'],
    [401, undefined, 'credentials', 'twilio 401'],
    [400, 21211, 'device', 'twilio 400 21211: invalid number'],
    [400, 21610, 'device', 'twilio 400 21610: recipient unsubscribed'],
    [400, 21408, 'permanent', 'twilio 400 21408: region not enabled for this account'],
    [400, 29999, 'permanent', 'twilio 400 29999: request refused'],
    [429, 20429, 'retry', 'twilio 429 20429: too many requests'],
    [503, 20503, 'fault', 'twilio 503 20503: service unavailable'],
  ] as const)('%i %s → %s', (status, code, kind, reason) => {
    expect(kinds(classifyTwilioError('d', status, code))).toEqual({ kind, reason });
  });
});

describe('SNS', () => {
  const number = 'Invalid parameter: PhoneNumber Reason: +4915112345678 is not valid to publish to';
  it.each([
    [403, 'InvalidClientTokenId', 'credentials', 'InvalidClientTokenId'],
    [403, 'SignatureDoesNotMatch', 'credentials', 'SignatureDoesNotMatch'],
    [400, 'UnrecognizedClientException', 'credentials', 'UnrecognizedClientException'],
    [403, 'AccessDeniedException', 'credentials', 'AccessDeniedException'],
    [403, 'AuthorizationError', 'credentials', 'AuthorizationError'],
    [400, 'InvalidParameter', 'device', 'sns 400 InvalidParameter: invalid phone number'],
    [400, 'ValidationError', 'permanent', 'sns 400 ValidationError: request refused'],
    [429, 'Throttled', 'retry', 'sns 429 Throttled: sending too fast'],
    [400, 'Throttling', 'retry', 'sns 400 Throttling: sending too fast'],
    [500, 'InternalError', 'fault', 'sns 500 InternalError: server error'],
  ] as const)('%i %s → %s', (status, code, kind, reason) => {
    const message = code === 'InvalidParameter' ? number : 'some text quoting +4915112345678';
    const d = classifySnsError('d', status, code, message);
    expect(kinds(d)).toEqual({ kind, reason });
    expect(d.outcome.outcome !== 'accepted' && d.outcome.reason).not.toContain('+4915112345678');
  });
});
