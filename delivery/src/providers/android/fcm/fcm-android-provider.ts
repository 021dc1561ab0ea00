import { FcmProvider, type FcmProviderOptions } from '../../shared/fcm-provider';

export type FcmAndroidProviderOptions = Omit<FcmProviderOptions, 'channel' | 'platform'>;

/**
 * Android push through FCM (firebase-admin). Android's two routes are two Firebase projects,
 * "fcm-primary" and "fcm-secondary", each its own provider with its own quota and breaker: FCM is
 * the only push transport every Android device with Play services has, so the independent second
 * route is a second project (its own quota, credentials and failure domain on Google's side).
 * The app registers with both sender ids (multiple senders); in production each device then has a
 * token per project. The sandbox does not bind tokens to projects, so one address serves both.
 */
export class FcmAndroidProvider extends FcmProvider {
  constructor(options: FcmAndroidProviderOptions) {
    super({ ...options, channel: 'android', platform: 'android' });
  }
}
