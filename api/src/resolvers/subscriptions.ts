import { Arg, Authorized, ID, Resolver, Root, Subscription } from 'type-graphql';
import * as G from '../types';
import { notFound } from '#schema/errors';
import { requireAccess, tenantOf } from '../auth';
import type { GraphQLContext } from '../context';
import { getNotification } from '#projections/notifications/queries';
import { NOTIFICATIONS, notificationDocId, type NotificationDocument } from '#projections/notifications/document';
import { notificationView } from '../views';
import type { LiveEvent } from '#query/live/hub';

type SubscribeArgs<A> = Readonly<{ args: A; context: GraphQLContext }>;

@Resolver()
export class SubscriptionResolver {
  @Authorized('read')
  @Subscription(() => G.Notification, {
    description: "A notification's progress: the current snapshot, then a new one at most 4 times a second while it changes.",
    subscribe: async ({ args, context }: SubscribeArgs<{ notificationId: string }>) => {
      requireAccess(context.principal, ['read']);
      const tenantId = tenantOf(context.principal);
      const doc = await getNotification(context.services.readStore, tenantId, args.notificationId);
      if (!doc) throw notFound(`notification ${args.notificationId}`);
      return context.services.live.watchProgress<NotificationDocument>(NOTIFICATIONS, notificationDocId(tenantId, args.notificationId), doc);
    },
  })
  notificationProgress(@Arg('notificationId', () => ID) _notificationId: string, @Root() doc: NotificationDocument): G.Notification {
    return notificationView(doc);
  }

  @Authorized('read')
  @Subscription(() => G.DeliveryEvent, {
    description:
      "The tenant's events as they are appended, optionally only one notification's or one user's. A client that falls behind gets an EventsDropped entry with the count instead of an unbounded queue.",
    subscribe: ({ args, context }: SubscribeArgs<{ notificationId?: string | null; userId?: string | null; types?: string[] | null }>) => {
      requireAccess(context.principal, ['read']);
      return context.services.live.watchEvents(tenantOf(context.principal), args);
    },
  })
  deliveryEvents(
    @Arg('notificationId', () => ID, { nullable: true }) _notificationId: string | null,
    @Arg('userId', () => ID, { nullable: true }) _userId: string | null,
    @Arg('types', () => [String], { nullable: true, description: 'Only events of these types (NotificationRequested, say); EventsDropped always.' }) _types: string[] | null,
    @Root() event: LiveEvent,
  ): G.DeliveryEvent {
    return event;
  }
}
