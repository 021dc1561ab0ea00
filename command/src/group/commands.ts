import { streams } from '#schema/streams';
import { notFound } from '#schema/errors';
import { parseEntityId, parseUserIds } from '#schema/values';
import type { EventStore } from '#platform/event-store/port';
import { handleCommand, load } from '../handler';
import { metadataOf, type Actor, type CommandContext } from '../context';
import type { UserCommands } from '../user/commands';
import { groupDecider, type GroupState } from './decider';

/** Every listed group must exist. */
export const requireGroups = async (eventStore: EventStore, tenantId: string, groupIds: readonly string[]): Promise<void> => {
  for (const groupId of groupIds) {
    const { state } = await load(eventStore, streams.group(tenantId, groupId), groupDecider);
    if (state.status !== 'Created') throw notFound(`group ${groupId}`);
  }
};

export class GroupCommands {
  constructor(private readonly ctx: CommandContext & Readonly<{ users: UserCommands }>) {}

  async create(actor: Actor, tenantId: string, input: Readonly<{ groupId?: string | null; name: string }>) {
    const groupId = input.groupId == null ? this.ctx.ids.ulid() : parseEntityId('groupId', input.groupId);
    return handleCommand(this.ctx.eventStore, streams.group(tenantId, groupId), groupDecider,
      { type: 'CreateGroup', data: { groupId, name: input.name }, now: this.ctx.clock.now() }, metadataOf(this.ctx, tenantId, actor));
  }

  async rename(actor: Actor, tenantId: string, groupIdInput: string, name: string) {
    const groupId = parseEntityId('groupId', groupIdInput);
    return handleCommand(this.ctx.eventStore, streams.group(tenantId, groupId), groupDecider,
      { type: 'RenameGroup', data: { groupId, name }, now: this.ctx.clock.now() }, metadataOf(this.ctx, tenantId, actor));
  }

  async state(tenantId: string, groupId: string): Promise<GroupState> {
    return (await load(this.ctx.eventStore, streams.group(tenantId, groupId), groupDecider)).state;
  }

  /** Membership is an attribute of the user, so this touches one user stream per member. */
  async changeMembers(actor: Actor, tenantId: string, groupIdInput: string, userIdsInput: readonly string[], join: boolean) {
    const groupId = parseEntityId('groupId', groupIdInput);
    const userIds = parseUserIds('userIds', userIdsInput);
    await requireGroups(this.ctx.eventStore, tenantId, [groupId]);
    return { groupId, ...(await this.ctx.users.changeGroup(actor, tenantId, groupId, userIds, join)) };
  }
}
