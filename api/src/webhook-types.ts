import { Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import type { WebhookEventType } from '#schema/webhooks';

/** GraphQL names on the left, the message types receivers see on the right. */
export const WebhookEventTypeEnum = {
  NOTIFICATION_COMPLETED: 'notification.completed',
  DELIVERY_FAILED: 'delivery.failed',
  DELIVERY_CONFIRMED: 'delivery.confirmed',
  DEVICE_INVALIDATED: 'device.invalidated',
  USER_SHREDDED: 'user.shredded',
} as const satisfies Record<string, WebhookEventType>;
registerEnumType(WebhookEventTypeEnum, {
  name: 'WebhookEventType',
  description: 'What a webhook endpoint is told about. Messages carry ids, counts and codes only, never personal data.',
});

@ObjectType({ description: 'Why an endpoint gets nothing: it failed continuously for too long. Enable it to resume where it stopped.' })
export class WebhookDisabled {
  @Field({ description: 'continuous-failure' })
  reason!: string;

  @Field({ description: 'When the failures began.' })
  failingSince!: Date;
}

@ObjectType({ description: 'One request to an endpoint.' })
export class WebhookAttempt {
  @Field()
  at!: Date;

  @Field({ description: 'The request\'s webhook-id header.' })
  webhookId!: string;

  @Field(() => Int, { description: 'Messages in the request (a JSON array).' })
  messages!: number;

  @Field(() => Int, { nullable: true, description: 'The HTTP status answered; null when none came.' })
  status!: number | null;

  @Field(() => String, { nullable: true, description: 'A code when it failed: http-<status>, timeout, a network error code (ECONNREFUSED), secret-unavailable.' })
  error!: string | null;

  @Field(() => Int)
  durationMs!: number;

  @Field()
  ok!: boolean;
}

@ObjectType({ description: 'Where status webhooks go: signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature).' })
export class WebhookEndpoint {
  @Field(() => ID)
  endpointId!: string;

  @Field()
  url!: string;

  @Field(() => [WebhookEventTypeEnum])
  events!: WebhookEventType[];

  @Field()
  enabled!: boolean;

  @Field(() => WebhookDisabled, { nullable: true })
  disabled!: WebhookDisabled | null;

  @Field({ description: 'The last characters of the signing secret, to tell which one a receiver holds.' })
  secretHint!: string;

  @Field(() => Int, { description: 'Messages queued and not yet delivered.' })
  pending!: number;

  @Field(() => Date, { nullable: true, description: 'Set while requests fail: since when.' })
  failingSince!: Date | null;

  @Field(() => Date, { nullable: true })
  lastSuccessAt!: Date | null;

  /** Not a field: the resolver reads `lastAttempts` from here. */
  tenantId!: string;
}

@ObjectType()
export class RegisteredWebhook {
  @Field(() => WebhookEndpoint)
  endpoint!: WebhookEndpoint;

  @Field({ description: 'The signing secret (whsec_...). Shown in this answer only; it is stored sealed.' })
  secret!: string;
}

@InputType()
export class RegisterWebhookInput {
  @Field({ description: 'https, at most 2048 characters.' })
  url!: string;

  @Field(() => [WebhookEventTypeEnum])
  events!: WebhookEventType[];
}

@InputType({ description: 'Absent fields stay as they are.' })
export class ChangeWebhookInput {
  @Field(() => ID)
  endpointId!: string;

  @Field(() => String, { nullable: true })
  url?: string | null;

  @Field(() => [WebhookEventTypeEnum], { nullable: true })
  events?: WebhookEventType[] | null;
}
