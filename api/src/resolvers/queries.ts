import { Arg, Authorized, Ctx, ID, Int, Query, Resolver } from 'type-graphql';
import * as G from '../types';
import { badInput, notFound } from '#schema/errors';
import { parseEntityId } from '#schema/values';
import { pageComplexity } from '../limits';
import { tenantOf } from '../auth';
import type { GraphQLContext } from '../context';
import { getUser, listUsers } from '#projections/users/queries';
import { getGroup, listGroups } from '#projections/groups/queries';
import { getNotification, listNotifications } from '#projections/notifications/queries';
import { listTimeline } from '#projections/timeline/queries';
import { getTenant, listTenants } from '#projections/tenants/queries';
import { connection, notificationView, tenantView, userView } from '../views';
import { replayAudit } from '#query/audit/replay';

export const MAX_PAGE = 500;

const pageSize = (first: number): number => {
  if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE) throw badInput('first', `${first} is out of range; a page holds 1 to ${MAX_PAGE} items`);
  return first;
};

/** Reads come from the read models, so they may trail the latest mutation by a few milliseconds. */
@Resolver()
export class QueryResolver {
  @Query(() => G.Principal, { description: 'Who the API key belongs to and what it may do.' })
  me(@Ctx() ctx: GraphQLContext): G.Principal {
    const p = ctx.principal;
    return p.kind === 'operator'
      ? { kind: 'operator', tenantId: null, keyId: p.keyId, scopes: [] }
      : { kind: 'tenant', tenantId: p.tenantId, keyId: p.keyId, scopes: [...p.scopes] };
  }

  @Authorized('read', 'operator')
  @Query(() => G.Tenant)
  async tenant(@Arg('tenantId', () => ID, { nullable: true, description: 'Operator keys only.' }) tenantId: string | null, @Ctx() ctx: GraphQLContext) {
    const id = tenantOf(ctx.principal, tenantId);
    const doc = await getTenant(ctx.services.readStore, id);
    if (!doc) throw notFound(`tenant ${id}`);
    return tenantView(doc);
  }

  @Authorized('operator')
  @Query(() => G.TenantConnection, { complexity: pageComplexity })
  async tenants(
    @Arg('first', () => Int, { defaultValue: 20 }) first: number,
    @Arg('after', () => String, { nullable: true }) after: string | null,
    @Ctx() ctx: GraphQLContext,
  ) {
    return connection(await listTenants(ctx.services.readStore, { first: pageSize(first), after }), tenantView);
  }

  @Authorized('read')
  @Query(() => G.User)
  async user(@Arg('userId', () => ID) userId: string, @Ctx() ctx: GraphQLContext) {
    const tenantId = tenantOf(ctx.principal);
    const doc = await getUser(ctx.services.readStore, tenantId, parseEntityId('userId', userId));
    if (!doc) throw notFound(`user ${userId}`);
    return userView(ctx.services.cipher, tenantId, doc);
  }

  @Authorized('read')
  @Query(() => G.UserConnection, { complexity: pageComplexity, description: 'By user id; only the members of groupId when given.' })
  async users(
    @Arg('groupId', () => ID, { nullable: true }) groupId: string | null,
    @Arg('first', () => Int, { defaultValue: 20 }) first: number,
    @Arg('after', () => String, { nullable: true }) after: string | null,
    @Ctx() ctx: GraphQLContext,
  ) {
    const tenantId = tenantOf(ctx.principal);
    if (groupId != null && !(await getGroup(ctx.services.readStore, tenantId, parseEntityId('groupId', groupId)))) {
      throw notFound(`group ${groupId}`);
    }
    const page = await listUsers(ctx.services.readStore, tenantId, {
      ...(groupId == null ? {} : { groupId }),
      first: pageSize(first),
      after,
    });
    return connection(page, (doc) => userView(ctx.services.cipher, tenantId, doc));
  }

  @Authorized('read')
  @Query(() => G.Group)
  async group(@Arg('groupId', () => ID) groupId: string, @Ctx() ctx: GraphQLContext) {
    const doc = await getGroup(ctx.services.readStore, tenantOf(ctx.principal), parseEntityId('groupId', groupId));
    if (!doc) throw notFound(`group ${groupId}`);
    return doc;
  }

  @Authorized('read')
  @Query(() => G.GroupConnection, { complexity: pageComplexity })
  async groups(
    @Arg('first', () => Int, { defaultValue: 20 }) first: number,
    @Arg('after', () => String, { nullable: true }) after: string | null,
    @Ctx() ctx: GraphQLContext,
  ) {
    return connection(await listGroups(ctx.services.readStore, tenantOf(ctx.principal), { first: pageSize(first), after }), (g) => g);
  }

  @Authorized('read')
  @Query(() => G.Notification)
  async notification(@Arg('notificationId', () => ID) notificationId: string, @Ctx() ctx: GraphQLContext) {
    const doc = await getNotification(ctx.services.readStore, tenantOf(ctx.principal), notificationId);
    if (!doc) throw notFound(`notification ${notificationId}`);
    return notificationView(doc);
  }

  @Authorized('read')
  @Query(() => G.NotificationConnection, { complexity: pageComplexity, description: 'Newest first.' })
  async notifications(
    @Arg('first', () => Int, { defaultValue: 20 }) first: number,
    @Arg('after', () => String, { nullable: true }) after: string | null,
    @Ctx() ctx: GraphQLContext,
  ) {
    const page = await listNotifications(ctx.services.readStore, tenantOf(ctx.principal), { first: pageSize(first), after });
    return connection(page, notificationView);
  }

  @Authorized('audit:read')
  @Query(() => G.AuditConnection, { complexity: pageComplexity, description: "The tenant's log, oldest first, optionally one user's or one notification's events in a time range." })
  async auditLog(
    @Arg('userId', () => ID, { nullable: true }) userId: string | null,
    @Arg('notificationId', () => ID, { nullable: true }) notificationId: string | null,
    @Arg('from', () => Date, { nullable: true }) from: Date | null,
    @Arg('to', () => Date, { nullable: true }) to: Date | null,
    @Arg('first', () => Int, { defaultValue: 100 }) first: number,
    @Arg('after', () => String, { nullable: true, description: 'The endCursor of the previous page.' }) after: string | null,
    @Ctx() ctx: GraphQLContext,
  ) {
    const size = pageSize(first);
    if (after != null && !/^\d+$/.test(after)) throw badInput('after', 'not a cursor from this query');
    const records = replayAudit(ctx.services.eventStore, ctx.services.cipher, {
      tenantId: tenantOf(ctx.principal),
      userId: userId ?? null,
      notificationId: notificationId ?? null,
      from: from?.toISOString() ?? null,
      to: to?.toISOString() ?? null,
      after: after == null ? 0 : Number(after),
    });
    const nodes: G.AuditEntry[] = [];
    let hasNextPage = false;
    for await (const r of records) {
      if (nodes.length === size) {
        hasNextPage = true;
        break;
      }
      nodes.push({ ...r, at: new Date(r.at), data: JSON.stringify(r.data) });
    }
    await records.return(undefined);
    const last = nodes[nodes.length - 1];
    return { nodes, pageInfo: { endCursor: last ? String(last.position) : null, hasNextPage } };
  }

  @Authorized('read')
  @Query(() => G.TimelineConnection, { complexity: pageComplexity, description: 'Every step concerning one user, oldest first.' })
  async timeline(
    @Arg('userId', () => ID) userId: string,
    @Arg('first', () => Int, { defaultValue: 50 }) first: number,
    @Arg('after', () => String, { nullable: true }) after: string | null,
    @Ctx() ctx: GraphQLContext,
  ) {
    const tenantId = tenantOf(ctx.principal);
    if (!(await getUser(ctx.services.readStore, tenantId, parseEntityId('userId', userId)))) throw notFound(`user ${userId}`);
    const page = await listTimeline(ctx.services.readStore, tenantId, userId, { first: pageSize(first), after });
    return connection(page, (e): G.TimelineEntry => ({
      ...e,
      at: new Date(e.at),
      notificationId: e.notificationId ?? null,
      deliveryId: e.deliveryId ?? null,
      deviceId: e.deviceId ?? null,
      channel: e.channel ?? null,
      status: e.status ?? null,
      provider: e.provider ?? null,
      possiblyDuplicate: e.possiblyDuplicate ?? false,
      steps: e.steps ? e.steps.map((s) => ({ step: s.step, at: new Date(s.at), provider: s.provider ?? null, latencyMs: s.latencyMs ?? null, outcome: s.outcome ?? null, reason: s.reason ?? null })) : null,
    }));
  }
}
