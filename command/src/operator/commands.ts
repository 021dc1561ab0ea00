import { streams } from '#schema/streams';
import type { OperatorEvent } from '#schema/events';
import { handleCommand, StreamCache } from '../handler';
import { newApiKey, OPERATOR } from '../tenant/api-keys';
import { metadataOf, type Actor, type CommandContext } from '../context';
import { operatorDecider, type OperatorState } from './decider';

/** The operator's keys: the root of trust, one small stream. */
export class OperatorCommands {
  readonly keys: StreamCache<OperatorEvent, OperatorState>;

  constructor(private readonly ctx: CommandContext) {
    this.keys = new StreamCache(ctx.eventStore, operatorDecider, 1);
  }

  async state(): Promise<OperatorState> {
    return (await this.keys.load(streams.operator())).state;
  }

  /** Issues an operator key when none is active; returns its token, or null when one exists. */
  async bootstrapKey(): Promise<string | null> {
    if ([...(await this.state()).keys.values()].some((k) => !k.revoked)) return null;
    return this.rotateKey({ keyId: 'system', requestId: 'bootstrap' });
  }

  /** Issues a new operator key and revokes every other one. */
  async rotateKey(actor: Actor): Promise<string> {
    const key = newApiKey(OPERATOR);
    const stream = streams.operator();
    const now = this.ctx.clock.now();
    const meta = metadataOf(this.ctx, OPERATOR, actor);
    const { state } = await handleCommand(this.ctx.eventStore, stream, operatorDecider,
      { type: 'IssueOperatorKey', data: { keyId: key.keyId, secretHash: key.secretHash }, now }, meta, { cache: this.keys });
    for (const [keyId, k] of state.keys) {
      if (keyId !== key.keyId && !k.revoked) {
        await handleCommand(this.ctx.eventStore, stream, operatorDecider, { type: 'RevokeOperatorKey', data: { keyId }, now }, meta, { cache: this.keys });
      }
    }
    return key.token;
  }
}
