import { Arg, Authorized, Ctx, ID, Int, Mutation, Resolver } from 'type-graphql';
import * as G from '../types';
import { estimateView, groupView, notificationRecordOf, notificationView, tenantView, userRecordOf, userView } from '../views';
import { satisfies, tenantOf } from '../auth';
import { perIdComplexity } from '../limits';
import { actorOf, type GraphQLContext } from '../context';

/** Thin: map the input to a use case of CommandService, map its result to the output type. */
@Resolver()
export class MutationResolver {
  @Authorized('operator')
  @Mutation(() => G.RegisterTenantPayload, { description: 'Operator only. Returns the tenant and its first ADMIN key.' })
  async registerTenant(@Arg('input', () => G.RegisterTenantInput) input: G.RegisterTenantInput, @Ctx() ctx: GraphQLContext) {
    const result = await ctx.services.commands.tenants.register(actorOf(ctx), input);
    return { tenant: tenantView(result.state), adminKey: { ...result.adminKey, name: 'admin' } };
  }

  @Authorized('operator')
  @Mutation(() => String, { description: 'Operator only. Issues a new operator key and revokes all others.' })
  async rotateOperatorKey(@Ctx() ctx: GraphQLContext) {
    return ctx.services.commands.operator.rotateKey(actorOf(ctx));
  }

  @Authorized('admin', 'operator')
  @Mutation(() => G.Tenant)
  async changeDeliveryDeadline(
    @Arg('minutes', () => Int) minutes: number,
    @Arg('tenantId', () => ID, { nullable: true, description: 'Operator keys only.' }) tenantId: string | null,
    @Ctx() ctx: GraphQLContext,
  ) {
    const result = await ctx.services.commands.tenants.changeDeliveryDeadline(actorOf(ctx), tenantOf(ctx.principal, tenantId), minutes);
    return tenantView(result.state);
  }

  @Authorized('admin', 'operator')
  @Mutation(() => G.Tenant, { description: 'How many days deliveries keep their steps in the timeline (1-3650). Older steps leave the read models; notification counts and the audit log stay.' })
  async changeDeliveryHistory(
    @Arg('days', () => Int) days: number,
    @Arg('tenantId', () => ID, { nullable: true, description: 'Operator keys only.' }) tenantId: string | null,
    @Ctx() ctx: GraphQLContext,
  ) {
    const result = await ctx.services.commands.tenants.changeDeliveryHistory(actorOf(ctx), tenantOf(ctx.principal, tenantId), days);
    return tenantView(result.state);
  }

  @Authorized('admin', 'operator')
  @Mutation(() => G.IssuedApiKey, { description: 'The token is in this response only.' })
  async issueApiKey(@Arg('input', () => G.IssueApiKeyInput) input: G.IssueApiKeyInput, @Ctx() ctx: GraphQLContext) {
    return ctx.services.commands.tenants.issueApiKey(actorOf(ctx), tenantOf(ctx.principal, input.tenantId), input);
  }

  @Authorized('admin', 'operator')
  @Mutation(() => G.Tenant)
  async revokeApiKey(
    @Arg('keyId', () => ID) keyId: string,
    @Arg('tenantId', () => ID, { nullable: true, description: 'Operator keys only.' }) tenantId: string | null,
    @Ctx() ctx: GraphQLContext,
  ) {
    const result = await ctx.services.commands.tenants.revokeApiKey(actorOf(ctx), tenantOf(ctx.principal, tenantId), keyId);
    return tenantView(result.state);
  }

  @Authorized('users:write')
  @Mutation(() => G.User)
  async registerUser(@Arg('input', () => G.RegisterUserInput) input: G.RegisterUserInput, @Ctx() ctx: GraphQLContext) {
    const tenantId = tenantOf(ctx.principal);
    const result = await ctx.services.commands.users.register(actorOf(ctx), tenantId, input);
    return userView(ctx.services.cipher, tenantId, userRecordOf(result.state, result.revision), { personal: satisfies(ctx.principal, ['read']) });
  }

  @Authorized('users:write')
  @Mutation(() => G.User, { description: 'Changes any subset of name, consent, optIn and groupIds atomically.' })
  async updateUser(@Arg('input', () => G.UpdateUserInput) input: G.UpdateUserInput, @Ctx() ctx: GraphQLContext) {
    const tenantId = tenantOf(ctx.principal);
    const result = await ctx.services.commands.users.update(actorOf(ctx), tenantId, input);
    return userView(ctx.services.cipher, tenantId, userRecordOf(result.state, result.revision), { personal: satisfies(ctx.principal, ['read']) });
  }

  @Authorized('users:write')
  @Mutation(() => G.User)
  async addDevice(
    @Arg('userId', () => ID) userId: string,
    @Arg('device', () => G.DeviceInput) device: G.DeviceInput,
    @Ctx() ctx: GraphQLContext,
  ) {
    const tenantId = tenantOf(ctx.principal);
    const result = await ctx.services.commands.users.addDevice(actorOf(ctx), tenantId, userId, device);
    return userView(ctx.services.cipher, tenantId, userRecordOf(result.state, result.revision), { personal: satisfies(ctx.principal, ['read']) });
  }

  @Authorized('users:write')
  @Mutation(() => G.User)
  async changeDevice(
    @Arg('userId', () => ID) userId: string,
    @Arg('deviceId', () => ID) deviceId: string,
    @Arg('device', () => G.DeviceInput) device: G.DeviceInput,
    @Ctx() ctx: GraphQLContext,
  ) {
    const tenantId = tenantOf(ctx.principal);
    const result = await ctx.services.commands.users.changeDevice(actorOf(ctx), tenantId, userId, deviceId, device);
    return userView(ctx.services.cipher, tenantId, userRecordOf(result.state, result.revision), { personal: satisfies(ctx.principal, ['read']) });
  }

  @Authorized('users:write')
  @Mutation(() => G.User)
  async removeDevice(
    @Arg('userId', () => ID) userId: string,
    @Arg('deviceId', () => ID) deviceId: string,
    @Ctx() ctx: GraphQLContext,
  ) {
    const tenantId = tenantOf(ctx.principal);
    const result = await ctx.services.commands.users.removeDevice(actorOf(ctx), tenantId, userId, deviceId);
    return userView(ctx.services.cipher, tenantId, userRecordOf(result.state, result.revision), { personal: satisfies(ctx.principal, ['read']) });
  }

  @Authorized('users:write')
  @Mutation(() => G.ForgottenUser, { description: "Erases a user now (right to erasure): destroys the user's data key, removes them from every read model." })
  async forgetUser(@Arg('userId', () => ID) userId: string, @Ctx() ctx: GraphQLContext) {
    return ctx.services.commands.users.forget(actorOf(ctx), tenantOf(ctx.principal), userId);
  }

  @Authorized('users:write')
  @Mutation(() => G.Group)
  async createGroup(@Arg('input', () => G.CreateGroupInput) input: G.CreateGroupInput, @Ctx() ctx: GraphQLContext) {
    const result = await ctx.services.commands.groups.create(actorOf(ctx), tenantOf(ctx.principal), input);
    return groupView(result.state);
  }

  @Authorized('users:write')
  @Mutation(() => G.Group)
  async renameGroup(@Arg('groupId', () => ID) groupId: string, @Arg('name') name: string, @Ctx() ctx: GraphQLContext) {
    const result = await ctx.services.commands.groups.rename(actorOf(ctx), tenantOf(ctx.principal), groupId, name);
    return groupView(result.state);
  }

  @Authorized('users:write')
  @Mutation(() => G.MembershipChange, { description: 'Up to 1000 users per call; idempotent. Costs 10 per user id (each is a write).', complexity: perIdComplexity('userIds', 10) })
  async addGroupMembers(
    @Arg('groupId', () => ID) groupId: string,
    @Arg('userIds', () => [ID]) userIds: string[],
    @Ctx() ctx: GraphQLContext,
  ) {
    return ctx.services.commands.groups.changeMembers(actorOf(ctx), tenantOf(ctx.principal), groupId, userIds, true);
  }

  @Authorized('users:write')
  @Mutation(() => G.MembershipChange, { description: 'Up to 1000 users per call; idempotent. Costs 10 per user id (each is a write).', complexity: perIdComplexity('userIds', 10) })
  async removeGroupMembers(
    @Arg('groupId', () => ID) groupId: string,
    @Arg('userIds', () => [ID]) userIds: string[],
    @Ctx() ctx: GraphQLContext,
  ) {
    return ctx.services.commands.groups.changeMembers(actorOf(ctx), tenantOf(ctx.principal), groupId, userIds, false);
  }

  @Authorized('notifications:send')
  @Mutation(() => G.SendNotificationPayload)
  async sendNotification(@Arg('input', () => G.SendNotificationInput) input: G.SendNotificationInput, @Ctx() ctx: GraphQLContext) {
    const result = await ctx.services.commands.notifications.send(actorOf(ctx), tenantOf(ctx.principal), input);
    const state = result.state;
    return {
      notification: notificationView(notificationRecordOf(state)),
      duplicate: result.duplicate,
      estimate: state.status !== 'None' && state.admission ? estimateView(state.admission) : null,
    };
  }
}
