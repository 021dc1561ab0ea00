import { Field, ID, InputType, Int, ObjectType } from 'type-graphql';
import { BreakerStateEnum, DeviceKindEnum, VendorEnum } from './enums';
import type { DeviceKind } from '#schema/events';
import type { Vendor } from '#schema/integrations';

// ---- provider integrations: inputs -----------------------------------------------------------
@InputType({ description: 'APNs token authentication: the .p8 key of the Apple developer account, and the app.' })
export class ApnsInput {
  @Field({ description: 'The .p8 file\'s content (PEM, an EC P-256 private key).' })
  key!: string;

  @Field({ description: 'The key\'s id (10 characters).' })
  keyId!: string;

  @Field({ description: 'The Apple developer team id (10 characters).' })
  teamId!: string;

  @Field({ description: "The app's bundle id: the topic of every push." })
  topic!: string;

  @Field(() => String, { nullable: true, description: '"production" (default) or "development" (the sandbox APNs).' })
  environment?: string | null;
}

@InputType({ description: 'A Firebase project: its service account JSON as Google gives it.' })
export class FcmInput {
  @Field(() => String, { nullable: true, description: 'The service account key file\'s content (JSON with project_id, client_email, private_key).' })
  serviceAccount?: string | null;

  @Field(() => String, { nullable: true, description: 'With accessToken only (sandboxes and proxies, operator-enabled endpoints).' })
  projectId?: string | null;

  @Field(() => String, { nullable: true, description: 'A fixed OAuth access token instead of a service account (operator-enabled endpoints only).' })
  accessToken?: string | null;
}

@InputType()
export class SendgridInput {
  @Field({ description: 'An API key with Mail Send permission (SG.xxx.yyy).' })
  apiKey!: string;

  @Field()
  from!: string;

  @Field(() => String, { nullable: true })
  replyTo?: string | null;

  @Field(() => String, { nullable: true, description: "The signed event webhook's verification key (base64), to accept delivery receipts." })
  webhookPublicKey?: string | null;
}

@InputType()
export class SmtpInput {
  @Field({ description: 'smtp://user:password@host:587 (STARTTLS) or smtps://...:465.' })
  url!: string;

  @Field()
  from!: string;
}

@InputType({ description: 'A Twilio account: an auth token, or an API key (SID and secret); a sender number or a messaging service.' })
export class TwilioInput {
  @Field()
  accountSid!: string;

  @Field(() => String, { nullable: true })
  authToken?: string | null;

  @Field(() => String, { nullable: true })
  apiKeySid?: string | null;

  @Field(() => String, { nullable: true })
  apiKeySecret?: string | null;

  @Field(() => String, { nullable: true, description: 'The sender number, E.164.' })
  from?: string | null;

  @Field(() => String, { nullable: true })
  messagingServiceSid?: string | null;
}

@InputType({ description: 'AWS SNS SMS: an IAM access key allowed sns:Publish.' })
export class SnsInput {
  @Field()
  region!: string;

  @Field()
  accessKeyId!: string;

  @Field()
  secretAccessKey!: string;

  @Field(() => String, { nullable: true })
  senderId?: string | null;
}

@InputType({ description: 'Creates or replaces one integration. Give exactly one vendor.' })
export class ConfigureProviderInput {
  @Field(() => ID, { description: "Unique among the owner's integrations; shown in progress and events." })
  name!: string;

  @Field(() => DeviceKindEnum)
  channel!: DeviceKind;

  @Field(() => Int, { nullable: true, description: "Position in the channel's failover chain, lower first (0 to 100; default 0). The platform defaults follow a tenant's own." })
  priority?: number | null;

  @Field(() => Int, { nullable: true, description: 'Messages a second the account allows; the quota the router and admission plan with.' })
  quotaPerSecond?: number | null;

  @Field(() => String, { nullable: true, description: "Send to this URL instead of the vendor's production host (only where the operator allows it)." })
  endpoint?: string | null;

  @Field(() => String, { nullable: true, description: 'A CA certificate (PEM) to trust for the endpoint.' })
  ca?: string | null;

  @Field(() => ApnsInput, { nullable: true })
  apns?: ApnsInput | null;

  @Field(() => FcmInput, { nullable: true })
  fcm?: FcmInput | null;

  @Field(() => SendgridInput, { nullable: true })
  sendgrid?: SendgridInput | null;

  @Field(() => SmtpInput, { nullable: true })
  smtp?: SmtpInput | null;

  @Field(() => TwilioInput, { nullable: true })
  twilio?: TwilioInput | null;

  @Field(() => SnsInput, { nullable: true })
  sns?: SnsInput | null;
}

// ---- provider integrations: views ------------------------------------------------------------
@ObjectType({ description: 'A setting that is not secret (topic, sender, region...).' })
export class ProviderSetting {
  @Field()
  key!: string;

  @Field()
  value!: string;
}

@ObjectType({ description: 'Credentials, masked: never the secret itself.' })
export class MaskedCredentials {
  @Field({ description: 'The first 16 hex characters of the SHA-256 of the credentials: equal fingerprints, equal credentials.' })
  fingerprint!: string;

  @Field({ description: 'The last characters of the main secret, e.g. "…a1b2".' })
  hint!: string;
}

@ObjectType()
export class BreakerView {
  @Field(() => BreakerStateEnum)
  state!: 'closed' | 'half-open' | 'open';

  @Field()
  reason!: string;

  @Field()
  at!: Date;
}

@ObjectType()
export class ProviderError {
  @Field({ description: "The provider's code (no text it sent: it may quote addresses)." })
  code!: string;

  @Field()
  at!: Date;
}

@ObjectType({ description: "How a tenant's integration is doing, for the operator: no settings, no credentials." })
export class ProviderHealth {
  @Field(() => ID)
  owner!: string;

  @Field(() => ID)
  name!: string;

  @Field(() => VendorEnum)
  vendor!: Vendor;

  @Field(() => DeviceKindEnum)
  channel!: DeviceKind;

  @Field(() => Int)
  priority!: number;

  @Field(() => BreakerView, { nullable: true })
  breaker!: BreakerView | null;

  @Field(() => ProviderError, { nullable: true })
  lastError!: ProviderError | null;

  @Field(() => String, { nullable: true })
  credentialsRejected!: string | null;
}

@ObjectType({ description: 'A breaker of one integration changed, as a delivery worker recorded it.' })
export class ProviderBreakerChange {
  @Field(() => ID, { description: 'The tenant, or "platform". Empty when changes were dropped because the client fell behind: read `providers` again.' })
  owner!: string;

  @Field(() => ID)
  name!: string;

  @Field(() => BreakerView)
  breaker!: BreakerView;

  @Field(() => ProviderError, { nullable: true, description: 'Set when the breaker opened after a failure.' })
  lastError!: ProviderError | null;
}

@ObjectType({ description: 'A provider integration: a tenant\'s own, or a platform default.' })
export class ProviderIntegration {
  @Field(() => ID, { description: 'The tenant, or "platform" for a platform default.' })
  owner!: string;

  @Field(() => ID)
  name!: string;

  @Field(() => VendorEnum)
  vendor!: Vendor;

  @Field(() => DeviceKindEnum)
  channel!: DeviceKind;

  @Field(() => Int)
  priority!: number;

  @Field(() => Int, { nullable: true })
  quotaPerSecond!: number | null;

  @Field(() => String, { nullable: true })
  endpoint!: string | null;

  @Field(() => [ProviderSetting])
  settings!: ProviderSetting[];

  @Field(() => MaskedCredentials)
  credentials!: MaskedCredentials;

  @Field(() => BreakerView, { nullable: true, description: 'As the delivery workers last reported it; null until one did.' })
  breaker!: BreakerView | null;

  @Field(() => ProviderError, { nullable: true })
  lastError!: ProviderError | null;

  @Field(() => String, { nullable: true, description: 'Set when the provider refused the credentials: the integration is skipped until configured again.' })
  credentialsRejected!: string | null;

  @Field(() => Date, { nullable: true })
  configuredAt!: Date | null;
}

@ObjectType({ description: "One message sent through one integration, and the provider's verdict." })
export class ProviderTestResult {
  @Field({ description: 'accepted, permanent (the address is refused for good) or transient.' })
  outcome!: string;

  @Field(() => String, { nullable: true })
  reason!: string | null;

  @Field({ description: 'The provider refused the integration\'s credentials.' })
  credentialsRejected!: boolean;

  @Field(() => Int)
  latencyMs!: number;
}
