import { Arg, Authorized, Ctx, ID, Int, Query, Resolver } from 'type-graphql';
import * as G from '../types';
import { badInput, notFound } from '#schema/errors';
import { parseEntityId } from '#schema/values';
import { auditComplexity, pageComplexity } from '../limits';
import { storeCursor, withCursor } from '../cursors';
import { budgetedScan } from '../audit-scan';
import { tenantOf } from '../auth';
import type { GraphQLContext } from '../context';
import { getUser, listUsers } from '#projections/users/queries';
import { getGroup, listGroups } from '#projections/groups/queries';
import { getNotification, listNotifications } from '#projections/notifications/queries';
import { getErasureMark, listTimeline } from '#projections/timeline/queries';
import { getTenant, listTenants } from '#projections/tenants/queries';
import { connection, notificationView, tenantView, userView } from '../views';
import { replayAudit, SECRET, verifyTenantChain } from '#query/audit/replay';

export const MAX_PAGE = 500;

/** Key events carry the secret's hash: enough to test guessed secrets offline, so no auditor sees it. */
const KEY_HASHES = new Set(['ApiKeyIssued', 'OperatorKeyIssued']);
const redactKeyHashes = (type: string, data: unknown): unknown =>
  KEY_HASHES.has(type) && data && typeof data === 'object' && 'secretHash' in data ? { ...data, secretHash: SECRET } : data;

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
    const size = pageSize(first);
    const cursor = storeCursor('tenants', 'operator', after);
    return connection('tenants', 'operator', await withCursor('tenants', () => listTenants(ctx.services.readStore, { first: size, after: cursor })), tenantView);
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
  @Query(() => G.ForgottenUser, { nullable: true, description: "The user's erasure (consent expiry or forgetUser) once their data is shredded; null otherwise." })
  async erasure(@Arg('userId', () => ID) userId: string, @Ctx() ctx: GraphQLContext) {
    const mark = await getErasureMark(ctx.services.readStore, tenantOf(ctx.principal), parseEntityId('userId', userId));
    return mark ? { userId, shreddedAt: new Date(mark.at) } : null;
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
    const size = pageSize(first);
    const cursor = storeCursor('users', tenantId, after);
    if (groupId != null && !(await getGroup(ctx.services.readStore, tenantId, parseEntityId('groupId', groupId)))) {
      throw notFound(`group ${groupId}`);
    }
    const page = await withCursor('users', () => listUsers(ctx.services.readStore, tenantId, {
      ...(groupId == null ? {} : { groupId }),
      first: size,
      after: cursor,
    }));
    return connection('users', tenantId, page, (doc) => userView(ctx.services.cipher, tenantId, doc));
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
    const tenantId = tenantOf(ctx.principal);
    const size = pageSize(first);
    const cursor = storeCursor('groups', tenantId, after);
    return connection('groups', tenantId, await withCursor('groups', () => listGroups(ctx.services.readStore, tenantId, { first: size, after: cursor })), (g) => g);
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
    const tenantId = tenantOf(ctx.principal);
    const size = pageSize(first);
    const cursor = storeCursor('notifications', tenantId, after);
    const page = await withCursor('notifications', () => listNotifications(ctx.services.readStore, tenantId, { first: size, after: cursor }));
    return connection('notifications', tenantId, page, notificationView);
  }

  @Authorized('audit:read')
  @Query(() => G.AuditVerification, {
    complexity: 1000,
    description: "Checks the tenant's hash chain from its first event (reads the whole of the tenant's log), as `notify audit verify` does.",
  })
  async auditVerification(@Ctx() ctx: GraphQLContext): Promise<G.AuditVerification> {
    const report = await verifyTenantChain(ctx.services.eventStore, tenantOf(ctx.principal), { keys: ctx.services.chainKeys ?? null });
    const b = report.firstBreak;
    return {
      ok: report.ok,
      checked: report.checked,
      lastPosition: report.lastPosition,
      lastAt: report.lastAt ? new Date(report.lastAt) : null,
      firstBreak: b ? { position: b.position, streamName: b.streamName, type: b.type, reason: b.reason } : null,
    };
  }

  @Authorized('audit:read')
  @Query(() => G.AuditConnection, {
    complexity: auditComplexity,
    description:
      "The tenant's log, oldest first, optionally one user's or one notification's events in a time range. A filtered request reads at most AUDIT_SCAN_LIMIT events of the log: its page may then hold fewer than `first` entries, with hasNextPage and an endCursor to continue from.",
  })
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
    if (after != null && !(/^\d{1,15}$/.test(after))) throw badInput('after', 'not a cursor from this query');
    const filtered = userId != null || notificationId != null || from != null || to != null;
    // Unfiltered, a page reads its own entries and one more; filtered, at most the scan limit.
    const scan = budgetedScan(ctx.services.eventStore, filtered ? ctx.api.auditScanLimit : size + 1);
    const records = replayAudit(scan.eventStore, ctx.services.cipher, {
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
      nodes.push({ ...r, at: new Date(r.at), data: JSON.stringify(redactKeyHashes(r.type, r.data)) });
    }
    await records.return(undefined);
    const last = nodes[nodes.length - 1];
    if (!hasNextPage && scan.exhausted() && scan.lastPosition() !== null) {
      // The scan stopped at its limit: continue after the last event it read, matching or not.
      return { nodes, pageInfo: { endCursor: String(scan.lastPosition()), hasNextPage: true } };
    }
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
    const size = pageSize(first);
    const cursor = storeCursor('timeline', `${tenantId}/${userId}`, after);
    if (!(await getUser(ctx.services.readStore, tenantId, parseEntityId('userId', userId)))) throw notFound(`user ${userId}`);
    const page = await withCursor('timeline', () => listTimeline(ctx.services.readStore, tenantId, userId, { first: size, after: cursor }));
    return connection('timeline', `${tenantId}/${userId}`, page, (e): G.TimelineEntry => ({
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
