import { Field, ID, InputType, Int, ObjectType } from 'type-graphql';

@InputType({ description: 'Per minute; null keeps the configured default, 0 turns the limit off for this tenant.' })
export class TenantLimitsInput {
  @Field(() => Int, { nullable: true, description: "Requests of all the tenant's keys together." })
  requestsPerMinute?: number | null;

  @Field(() => Int, { nullable: true, description: 'Requests of each one of its keys.' })
  keyRequestsPerMinute?: number | null;

  @Field(() => Int, { nullable: true, description: 'sendNotification calls of all its keys together.' })
  sendsPerMinute?: number | null;

  @Field(() => Int, { nullable: true, description: 'sendNotification calls of each one of its keys.' })
  keySendsPerMinute?: number | null;
}

@ObjectType({ description: "A tenant's rate limits in force, per minute (0: none)." })
export class TenantLimits {
  @Field(() => ID)
  tenantId!: string;

  @Field(() => Int)
  requestsPerMinute!: number;

  @Field(() => Int)
  keyRequestsPerMinute!: number;

  @Field(() => Int)
  sendsPerMinute!: number;

  @Field(() => Int)
  keySendsPerMinute!: number;

  @Field({ description: 'Whether the operator set any of them for this tenant (the others are the defaults).' })
  custom!: boolean;
}
