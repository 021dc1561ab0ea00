import { Arg, Authorized, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import { badInput } from '#schema/errors';
import { WEBHOOK_ATTEMPTS_KEPT } from '#projections/webhooks/document';
import { listWebhookAttempts, webhookStatuses, type WebhookDeliveryStatus } from '#projections/webhooks/queries';
import type { WebhookEndpoint as EndpointState } from '#command/webhook/decider';
import type { ReadStore } from '#platform/read-store/port';
import * as W from '../webhook-types';
import { tenantOf } from '../auth';
import { actorOf, type GraphQLContext } from '../context';

const date = (s: string | null): Date | null => (s === null ? null : new Date(s));

const endpointView = (tenantId: string, e: EndpointState, status: WebhookDeliveryStatus | undefined): W.WebhookEndpoint => ({
  tenantId,
  endpointId: e.endpointId,
  url: e.url,
  events: [...e.events],
  enabled: e.disabled === null,
  disabled: e.disabled && { reason: e.disabled.reason, failingSince: new Date(e.disabled.failingSince) },
  secretHint: e.secretHint,
  pending: status?.pending ?? 0,
  failingSince: date(status?.failingSince ?? null),
  lastSuccessAt: date(status?.lastSuccessAt ?? null),
});

const viewsOf = async (store: ReadStore, tenantId: string, endpoints: readonly EndpointState[]): Promise<W.WebhookEndpoint[]> => {
  const statuses = await webhookStatuses(store, tenantId, endpoints.map((e) => e.endpointId));
  return endpoints.map((e) => endpointView(tenantId, e, statuses.get(e.endpointId)));
};

/** Status webhooks: the tenant's admin registers endpoints and watches their deliveries. */
@Resolver(() => W.WebhookEndpoint)
export class WebhookResolver {
  @Authorized('admin')
  @Mutation(() => W.RegisteredWebhook, { description: 'At most 10 endpoints per tenant. The signing secret is in this answer only.' })
  async registerWebhook(@Arg('input', () => W.RegisterWebhookInput) input: W.RegisterWebhookInput, @Ctx() ctx: GraphQLContext) {
    const tenantId = tenantOf(ctx.principal);
    const { endpoint, secret } = await ctx.services.commands.webhooks.register(actorOf(ctx), tenantId, input);
    return { endpoint: (await viewsOf(ctx.services.readStore, tenantId, [endpoint]))[0]!, secret };
  }

  @Authorized('admin')
  @Mutation(() => W.WebhookEndpoint, { description: 'A new URL, or other event types; the secret stays.' })
  async changeWebhook(@Arg('input', () => W.ChangeWebhookInput) input: W.ChangeWebhookInput, @Ctx() ctx: GraphQLContext) {
    const tenantId = tenantOf(ctx.principal);
    const endpoint = await ctx.services.commands.webhooks.change(actorOf(ctx), tenantId, input);
    return (await viewsOf(ctx.services.readStore, tenantId, [endpoint]))[0]!;
  }

  @Authorized('admin')
  @Mutation(() => ID, { description: 'Removes the endpoint and drops what was still queued for it. Answers its id.' })
  async removeWebhook(@Arg('endpointId', () => ID) endpointId: string, @Ctx() ctx: GraphQLContext) {
    return ctx.services.commands.webhooks.remove(actorOf(ctx), tenantOf(ctx.principal), endpointId);
  }

  @Authorized('admin')
  @Mutation(() => W.WebhookEndpoint, { description: 'Resumes a disabled endpoint with the first message it did not get.' })
  async enableWebhook(@Arg('endpointId', () => ID) endpointId: string, @Ctx() ctx: GraphQLContext) {
    const tenantId = tenantOf(ctx.principal);
    const endpoint = await ctx.services.commands.webhooks.enable(actorOf(ctx), tenantId, endpointId);
    return (await viewsOf(ctx.services.readStore, tenantId, [endpoint]))[0]!;
  }

  @Authorized('admin')
  @Query(() => [W.WebhookEndpoint], { description: "The tenant's webhook endpoints and how their deliveries go.", complexity: ({ childComplexity }) => 1 + childComplexity * 10 })
  async webhooks(@Ctx() ctx: GraphQLContext) {
    const tenantId = tenantOf(ctx.principal);
    return viewsOf(ctx.services.readStore, tenantId, await ctx.services.commands.webhooks.list(tenantId));
  }

  @FieldResolver(() => [W.WebhookAttempt], {
    description: `The latest requests, newest first (the last ${WEBHOOK_ATTEMPTS_KEPT} are kept).`,
    complexity: ({ args, childComplexity }) => 1 + childComplexity * (typeof args['first'] === 'number' ? (args['first'] as number) : 10),
  })
  async lastAttempts(@Root() endpoint: W.WebhookEndpoint, @Arg('first', () => Int, { defaultValue: 10 }) first: number, @Ctx() ctx: GraphQLContext) {
    if (!Number.isInteger(first) || first < 1 || first > WEBHOOK_ATTEMPTS_KEPT) throw badInput('first', `${first} is out of range: 1 to ${WEBHOOK_ATTEMPTS_KEPT}`);
    const attempts = await listWebhookAttempts(ctx.services.readStore, endpoint.tenantId, endpoint.endpointId, first);
    return attempts.map((a) => ({ ...a, at: new Date(a.at) }));
  }
}
