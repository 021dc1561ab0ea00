import type http from 'node:http';
import type { Route } from './server';

/** What a provider's callback is, before its signature is checked (by the receipt intake). */
export type ProviderCallback = Readonly<{
  vendor: string;
  owner: string;
  name: string;
  /** The URL the provider called, as it called it (Twilio signs it). */
  url: string;
  headers: Readonly<Record<string, string | undefined>>;
  body: string;
}>;

/** Verifies and records providers' delivery receipts: 403 for a callback without a valid signature. */
export type ReceiptIntake = Readonly<{ handle: (callback: ProviderCallback) => Promise<number> }>;

const PATH = /^\/webhooks\/([a-z]+)\/([a-z0-9-]{3,40})\/([A-Za-z0-9][A-Za-z0-9_.:-]{0,63})(?:\?|$)/;
const MAX_BODY = 1_000_000;

const readBody = (req: http.IncomingMessage): Promise<string | null> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        resolve(null);
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });

/**
 * `POST /webhooks/<vendor>/<owner>/<integration>`: the providers' delivery receipts (Twilio status
 * callbacks, SendGrid's signed event webhook). No API key: the provider's signature, checked
 * against the integration's own credentials, is the authentication.
 */
export const receiptRoute = (intake: ReceiptIntake, publicUrl: () => string | null): Route => async (req, res) => {
  const match = PATH.exec(req.url ?? '');
  if (!match) return false;
  if (req.method !== 'POST') {
    res.writeHead(405, { allow: 'POST', 'content-type': 'application/json' }).end('{"error":"POST only"}');
    return true;
  }
  const body = await readBody(req);
  if (body === null) {
    res.writeHead(413, { 'content-type': 'application/json', connection: 'close' }).end('{"error":"body over 1 MB"}');
    return true;
  }
  const base = publicUrl() ?? `http://${req.headers.host ?? 'localhost'}`;
  const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : v]));
  const status = await intake.handle({ vendor: match[1]!, owner: match[2]!, name: match[3]!, url: `${base}${req.url}`, headers, body });
  res.writeHead(status, { 'content-type': 'application/json' }).end(status < 300 ? '{"ok":true}' : status === 403 ? '{"error":"signature not valid"}' : '{"error":"not accepted"}');
  return true;
};
