import { registerEnumType } from 'type-graphql';

/** GraphQL names on the left, the values used everywhere else on the right. */
export const ScopeEnum = {
  USERS_WRITE: 'users:write',
  NOTIFICATIONS_SEND: 'notifications:send',
  READ: 'read',
  AUDIT_READ: 'audit:read',
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

export const NotificationStatusEnum = {
  REQUESTED: 'REQUESTED',
  PLANNING: 'PLANNING',
  DELIVERING: 'DELIVERING',
  COMPLETED: 'COMPLETED',
} as const;
registerEnumType(NotificationStatusEnum, { name: 'NotificationStatus' });
