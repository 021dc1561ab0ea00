import { FcmProvider, type FcmProviderOptions } from '../../shared/fcm-provider';

export type FcmIosProviderOptions = Omit<FcmProviderOptions, 'channel' | 'platform' | 'name'> & { name?: string };

/**
 * iOS's second route: FCM, which relays to APNs with the Firebase project's own APNs key. The
 * delivery id goes in apns.headers['apns-collapse-id'] (hashed past 64 bytes), as with APNs direct.
 */
export class FcmIosProvider extends FcmProvider {
  constructor(options: FcmIosProviderOptions) {
    super({ ...options, name: options.name ?? 'fcm-ios', channel: 'ios', platform: 'ios' });
  }
}
