import { Arg, Authorized, Ctx, ID, Mutation, Query, Resolver } from 'type-graphql';
import { badInput, notFound } from '#schema/errors';
import * as L from '../limit-types';
import { tenantOf } from '../auth';
import type { GraphQLContext } from '../context';
import type { RateLimitValues } from '../rate-limits';

const FIELDS = {
  requestsPerMinute: 'tenantRequestsPerMinute',
  keyRequestsPerMinute: 'keyRequestsPerMinute',
  sendsPerMinute: 'tenantSendsPerMinute',
  keySendsPerMinute: 'keySendsPerMinute',
} as const satisfies Record<keyof L.TenantLimitsInput, keyof RateLimitValues>;

const MAX = 100_000_000;

const view = async (ctx: GraphQLContext, tenantId: string): Promise<L.TenantLimits> => {
  const limits = await ctx.api.rateLimits.effective(tenantId);
  const custom = (await ctx.api.overrides.get(tenantId)) !== null;
  return {
    tenantId,
    requestsPerMinute: limits.tenantRequestsPerMinute,
    keyRequestsPerMinute: limits.keyRequestsPerMinute,
    sendsPerMinute: limits.tenantSendsPerMinute,
    keySendsPerMinute: limits.keySendsPerMinute,
    custom,
  };
};

/** Rate limits: the operator sets a tenant's; the tenant's admin reads them. */
@Resolver()
export class LimitsResolver {
  @Authorized('admin', 'operator')
  @Query(() => L.TenantLimits, { description: "The rate limits in force for a tenant (operator keys name it)." })
  async tenantLimits(@Arg('tenantId', () => ID, { nullable: true, description: 'Operator keys only.' }) tenantId: string | null, @Ctx() ctx: GraphQLContext) {
    const id = tenantOf(ctx.principal, tenantId);
    const state = await ctx.services.commands.tenants.state(id);
    if (state.status !== 'Registered') throw notFound(`tenant ${id}`);
    return view(ctx, id);
  }

  @Authorized('operator')
  @Mutation(() => L.TenantLimits, {
    description: "Operator only. Sets a tenant's rate limits over the configured defaults; every replica applies them within 5 seconds.",
  })
  async setTenantLimits(
    @Arg('tenantId', () => ID) tenantId: string,
    @Arg('input', () => L.TenantLimitsInput) input: L.TenantLimitsInput,
    @Ctx() ctx: GraphQLContext,
  ) {
    const state = await ctx.services.commands.tenants.state(tenantId);
    if (state.status !== 'Registered') throw notFound(`tenant ${tenantId}`);
    const values = {} as Record<keyof RateLimitValues, number | null>;
    for (const [name, internal] of Object.entries(FIELDS) as [keyof L.TenantLimitsInput, keyof RateLimitValues][]) {
      const v = input[name] ?? null;
      if (v !== null && (!Number.isInteger(v) || v < 0 || v > MAX)) throw badInput(`input.${name}`, `must be 0 (no limit) to ${MAX} a minute, or null for the default`);
      values[internal] = v;
    }
    await ctx.api.overrides.set({ id: tenantId, tenantId, ...values, setAt: new Date().toISOString(), setBy: ctx.principal.keyId });
    return view(ctx, tenantId);
  }
}
