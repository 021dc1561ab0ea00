import { Arg, Authorized, Ctx, ID, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import { PLATFORM } from '#schema/integrations';
import { forbidden, notFound } from '#schema/errors';
import { parseEntityId } from '#schema/values';
import { listIntegrations } from '#projections/integrations/queries';
import * as P from '../provider-types';
import { integrationView, integrationViewOf } from '../views';
import { requireAccess, type Principal } from '../auth';
import type { BreakerChange } from '#query/live/hub';
import { actorOf, type GraphQLContext } from '../context';

/**
 * The owner an operation acts on: a tenant key its own tenant; the operator key the platform
 * defaults (`tenantId: "platform"`), never a tenant's integrations.
 */
const ownerOf = (p: Principal, requested: string | null | undefined): string => {
  if (p.kind === 'tenant') {
    if (requested != null && requested !== p.tenantId) throw forbidden(`this key belongs to another tenant than ${requested}`);
    return p.tenantId;
  }
  if (requested !== PLATFORM) throw forbidden(`operator keys manage the platform defaults: pass tenantId: "${PLATFORM}"`);
  return PLATFORM;
};

const toInput = (input: P.ConfigureProviderInput) => ({
  ...input,
  endpoint: input.endpoint == null ? undefined : { url: input.endpoint },
  ca: input.ca ?? undefined,
});

@Resolver()
export class ProviderResolver {
  @Authorized('providers:admin', 'operator')
  @Mutation(() => P.ProviderIntegration, { description: "Creates or replaces one provider integration. Its credentials are sealed before they are stored; the answer shows them masked." })
  async configureProvider(
    @Arg('input', () => P.ConfigureProviderInput) input: P.ConfigureProviderInput,
    @Arg('tenantId', () => ID, { nullable: true, description: 'Operator keys: "platform".' }) tenantId: string | null,
    @Ctx() ctx: GraphQLContext,
  ) {
    const owner = ownerOf(ctx.principal, tenantId);
    const allowEndpoint = owner === PLATFORM || ctx.services.providers.allowTenantEndpoints;
    const result = await ctx.services.commands.integrations.configure(actorOf(ctx), owner, toInput(input), { allowEndpoint });
    const configured = result.state.integrations.get(input.name);
    if (!configured) throw new Error('integration state after a successful command must hold it');
    return integrationViewOf(configured);
  }

  @Authorized('providers:admin', 'operator')
  @Mutation(() => Boolean, { description: 'Removes an integration; its sends go to the next one in the chain.' })
  async removeProvider(
    @Arg('name', () => ID) name: string,
    @Arg('tenantId', () => ID, { nullable: true, description: 'Operator keys: "platform".' }) tenantId: string | null,
    @Ctx() ctx: GraphQLContext,
  ) {
    await ctx.services.commands.integrations.remove(actorOf(ctx), ownerOf(ctx.principal, tenantId), parseEntityId('name', name));
    return true;
  }

  @Authorized('providers:admin', 'operator')
  @Mutation(() => P.ProviderTestResult, { description: "Sends one message through one integration to the address given, and answers with the provider's verdict. Nothing is stored." })
  async testProvider(
    @Arg('name', () => ID) name: string,
    @Arg('address', { description: 'A push token, email address or E.164 number of the integration\'s channel.' }) address: string,
    @Arg('tenantId', () => ID, { nullable: true, description: 'Operator keys: "platform".' }) tenantId: string | null,
    @Ctx() ctx: GraphQLContext,
  ) {
    return ctx.services.providers.test(ownerOf(ctx.principal, tenantId), parseEntityId('name', name), address);
  }

  @Authorized('providers:admin', 'read', 'operator')
  @Query(() => [P.ProviderIntegration], { description: "The owner's integrations with their credentials masked, breaker state and last error; for a tenant, the platform defaults follow its own." })
  async providers(
    @Arg('tenantId', () => ID, { nullable: true, description: 'Operator keys: "platform".' }) tenantId: string | null,
    @Ctx() ctx: GraphQLContext,
  ) {
    const owner = ownerOf(ctx.principal, tenantId);
    const own = await listIntegrations(ctx.services.readStore, owner);
    const defaults = owner === PLATFORM ? [] : await listIntegrations(ctx.services.readStore, PLATFORM);
    return [...own, ...defaults].map(integrationView);
  }

  @Authorized('providers:admin', 'read', 'operator')
  @Subscription(() => P.ProviderBreakerChange, {
    description: "Breaker changes of the owner's integrations as they are recorded; for a tenant, of the platform defaults too.",
    subscribe: ({ args, context }: { args: { tenantId?: string | null }; context: GraphQLContext }) => {
      requireAccess(context.principal, ['providers:admin', 'read', 'operator']);
      if (context.principal.kind === 'operator' && args.tenantId === '*') return context.services.live.watchBreakers(null);
      const owner = ownerOf(context.principal, args.tenantId);
      return context.services.live.watchBreakers(owner === PLATFORM ? [PLATFORM] : [owner, PLATFORM]);
    },
  })
  providerBreakers(
    @Arg('tenantId', () => ID, { nullable: true, description: 'Operator keys: "platform", or "*" for every owner\'s.' }) _tenantId: string | null,
    @Root() change: BreakerChange,
  ): P.ProviderBreakerChange {
    return {
      owner: change.owner,
      name: change.name,
      breaker: { state: change.state, reason: change.reason, at: change.at },
      lastError: change.state === 'open' && change.lastFailure ? { code: change.lastFailure, at: change.at } : null,
    };
  }

  @Authorized('operator')
  @Query(() => [P.ProviderHealth], { description: "Operator only: a tenant's integrations as the delivery workers see them (breaker, last error), without settings or credentials." })
  async providerHealth(@Arg('tenantId', () => ID) tenantId: string, @Ctx() ctx: GraphQLContext): Promise<P.ProviderHealth[]> {
    return (await listIntegrations(ctx.services.readStore, parseEntityId('tenantId', tenantId))).map((i) => {
      const v = integrationView(i);
      return { owner: v.owner, name: v.name, vendor: v.vendor, channel: v.channel, priority: v.priority, breaker: v.breaker, lastError: v.lastError, credentialsRejected: v.credentialsRejected };
    });
  }

  @Authorized('providers:admin', 'read', 'operator')
  @Query(() => P.ProviderIntegration)
  async provider(
    @Arg('name', () => ID) name: string,
    @Arg('tenantId', () => ID, { nullable: true, description: 'Operator keys: "platform".' }) tenantId: string | null,
    @Ctx() ctx: GraphQLContext,
  ) {
    const owner = ownerOf(ctx.principal, tenantId);
    const found = (await listIntegrations(ctx.services.readStore, owner)).find((i) => i.name === name);
    if (!found) throw notFound(`provider integration ${name}`);
    return integrationView(found);
  }
}
