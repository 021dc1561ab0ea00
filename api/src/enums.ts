import { registerEnumType } from 'type-graphql';

/** GraphQL names on the left, the values used everywhere else on the right. */
export const ScopeEnum = {
  USERS_WRITE: 'users:write',
  NOTIFICATIONS_SEND: 'notifications:send',
  READ: 'read',
  AUDIT_READ: 'audit:read',
  PROVIDERS_ADMIN: 'providers:admin',
  ADMIN: 'admin',
} as const;
registerEnumType(ScopeEnum, {
  name: 'Scope',
  description: 'What an API key may do. ADMIN holds every other scope of its tenant.',
});

export const DeviceKindEnum = { IOS: 'ios', ANDROID: 'android', EMAIL: 'email', SMS: 'sms' } as const;
registerEnumType(DeviceKindEnum, {
  name: 'DeviceKind',
  description: 'IOS and ANDROID take a push token, EMAIL an address, SMS an E.164 phone number.',
});

export const VendorEnum = { APNS: 'apns', FCM: 'fcm', SENDGRID: 'sendgrid', SMTP: 'smtp', TWILIO: 'twilio', SNS: 'sns' } as const;
registerEnumType(VendorEnum, { name: 'Vendor', description: 'The provider an integration sends through.' });

export const BreakerStateEnum = { CLOSED: 'closed', HALF_OPEN: 'half-open', OPEN: 'open' } as const;
registerEnumType(BreakerStateEnum, { name: 'BreakerState', description: "An integration's circuit breaker: OPEN skips it, HALF_OPEN lets one probe through." });

export const NotificationStatusEnum = {
  REQUESTED: 'REQUESTED',
  PLANNING: 'PLANNING',
  DELIVERING: 'DELIVERING',
  COMPLETED: 'COMPLETED',
} as const;
registerEnumType(NotificationStatusEnum, { name: 'NotificationStatus' });
