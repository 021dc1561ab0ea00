import type { Consumer } from '#platform/bus/port';
import { DELIVERY_GROUP, DELIVERY_TOPIC } from '../ids';
import { Recorder } from '../recorder';
import { Commits } from './commits';
import { Intake, NotificationStates } from './intake';
import { Ownership } from './ownership';
import { Scheduler } from './scheduler';
import { Sender } from './sender';
import { SlicePlanner } from './slices';
import { DEFAULT_HANDOVER_MS, Pending, Tasks, type WorkerDeps } from './state';

export type { WorkerDeps } from './state';

/**
 * Takes the slices of its bus partitions, plans them page by page and sends them, earliest
 * deadline first across tenants (planned and unplanned work alike), within each integration's
 * quota and concurrency; retries transient failures with backoff and jitter while the deadline
 * allows; records every step in batched events; commits a slice's bus offset only when it is
 * planned and every delivery of it has its terminal event in the log.
 *
 * A slice goes intake (once; after a crash, what the log says was planned and not finished comes
 * first) → scheduler (EDF over slices and deliveries) → slices (a page planned into the log, its
 * deliveries queued) → sender (intent logged, eligibility against the read models, provider,
 * outcome) → commits (offsets released once outcomes are in the log); ownership holds sends while
 * a rebalance moves partitions.
 */
export class DeliveryWorker {
  private readonly pending: Pending;
  private readonly tasks = new Tasks();
  private readonly recorder: Recorder;
  private readonly scheduler: Scheduler;
  private readonly commits: Commits;
  private readonly states: NotificationStates;
  private readonly ownership: Ownership;
  private readonly sender: Sender;
  private readonly intake: Intake;
  private readonly planner: SlicePlanner;
  private consumer: Consumer | null = null;
  private loop: Promise<void> | null = null;
  private stopped = false;

  constructor(private readonly deps: WorkerDeps) {
    const handoverMs = deps.handoverMs ?? DEFAULT_HANDOVER_MS;
    this.pending = new Pending(deps.config);
    this.recorder = new Recorder({
      eventStore: deps.eventStore,
      flushMs: deps.config.flushMs,
      now: () => deps.clock.now(),
      onFlushed: (terminals) => this.commits.settled(terminals),
      onError: (e) => {
        deps.logger.error({ err: e }, 'recording delivery outcomes failed; stopping the worker (jobs will be delivered again)');
        void this.stop();
      },
    });
    const { pending, tasks, recorder } = this;
    this.scheduler = new Scheduler({ ...deps, pending, tasks });
    const scheduler = this.scheduler;
    this.commits = new Commits({ ...deps, pending, scheduler });
    this.states = new NotificationStates({ ...deps, handoverMs });
    const states = this.states;
    this.ownership = new Ownership({
      ...deps, handoverMs, pending, scheduler, commits: this.commits, recorder,
      reload: (partitions) => states.reload(partitions),
      forget: (partitions) => this.intake.forget(partitions),
      partitions: deps.config.partitions,
      ...(deps.onShare ? { onShare: deps.onShare } : {}),
    });
    const ownership = this.ownership;
    this.sender = new Sender({ ...deps, recorder, pending, scheduler, ownership, tasks });
    this.planner = new SlicePlanner({ ...deps, pending, scheduler, ownership, commits: this.commits });
    this.intake = new Intake({ ...deps, states, pending, scheduler, ownership, commits: this.commits, planner: this.planner });
  }

  get depth(): number {
    return this.scheduler.depth;
  }

  async start(): Promise<void> {
    await this.deps.bus.ensureTopic(DELIVERY_TOPIC, this.deps.config.partitions);
    const { ownership, sender, planner } = this;
    this.loop = this.scheduler.run({
      holding: () => ownership.rebalancing,
      ours: (item) => ownership.ours(item),
      dispatch: (round) => sender.dispatch(round),
      retry: (item, reason, counted) => sender.retry(item, reason, counted),
      expire: (item, reason) => sender.expire(item, reason),
      fail: (item, reason) => sender.fail(item, null, reason),
      plan: (slice) => planner.plan(slice),
    });
    this.consumer = await this.deps.bus.consume({
      topic: DELIVERY_TOPIC,
      group: DELIVERY_GROUP,
      handler: (messages) => this.intake.accept(messages),
      onRebalancing: () => ownership.began(),
      onAssigned: (partitions) => ownership.assigned(partitions),
      onRevoked: (partitions) => ownership.revoked(partitions),
      onError: (e) => this.deps.logger.error({ err: e }, 'delivery consumer failed'),
    });
    this.commits.attach(this.consumer);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.scheduler.stop();
    this.states.stop();
    this.intake.stop();
    await this.consumer?.stop();
    await this.loop;
    await this.tasks.drain();
    await this.recorder.close();
  }
}
