import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import type { SandboxTls } from './certs';
import { credentialId } from './credentials';
import type { SandboxInstance, Verdict } from './instance';
import type { Listening } from './http';
import { EMAIL, nextId } from './http';

/**
 * An SMTP submission server (smtp-server) with STARTTLS and AUTH PLAIN/LOGIN. Faults map onto SMTP
 * replies: outage 421 (on connect and MAIL FROM), rate limit 451 4.7.1 at MAIL FROM, error rate
 * 451 4.3.0 after DATA, refused recipients 550 5.1.1 (unknown) / 553 5.1.3 (malformed) at RCPT TO,
 * hang = no reply to MAIL FROM. Latency delays the reply to DATA. `X-Delivery-Id` is recorded.
 * Logins are the instance's registered credentials; one revoked since AUTH is refused at the next
 * MAIL FROM with the same 535, so pooled connections stop sending too.
 */

type Session = SMTPServerSession & { verdict?: Verdict };

const smtpError = (code: number, message: string) => Object.assign(new Error(message), { responseCode: code });

function decodeQuotedPrintable(s: string): Buffer {
  const bytes: number[] = [];
  const body = s.replace(/=\r?\n/g, '');
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === '=' && /^[0-9A-Fa-f]{2}$/.test(body.slice(i + 1, i + 3))) {
      bytes.push(parseInt(body.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      for (const b of Buffer.from(c, 'utf8')) bytes.push(b);
    }
  }
  return Buffer.from(bytes);
}

/** Headers and the text/plain body of a (single-part or multipart) message. */
export function parseMail(raw: string): { headers: Map<string, string>; text: string } {
  const split = raw.indexOf('\r\n\r\n');
  const head = split < 0 ? raw : raw.slice(0, split);
  let body = split < 0 ? '' : raw.slice(split + 4);
  const headers = new Map<string, string>();
  for (const line of head.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
  }
  const type = headers.get('content-type') ?? 'text/plain';
  const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
  if (/^multipart\//i.test(type) && boundary !== undefined) {
    for (const part of body.split(`--${boundary}`).slice(1)) {
      const inner = parseMail(part.replace(/^\r\n/, ''));
      const innerType = inner.headers.get('content-type') ?? 'text/plain';
      if (/^text\/plain/i.test(innerType) || /^multipart\//i.test(innerType)) return { headers, text: inner.text };
    }
    return { headers, text: '' };
  }
  const encoding = (headers.get('content-transfer-encoding') ?? '7bit').toLowerCase();
  if (body.endsWith('\r\n')) body = body.slice(0, -2);
  let text: string;
  if (encoding === 'quoted-printable') text = decodeQuotedPrintable(body).toString('utf8');
  else if (encoding === 'base64') text = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  else text = body;
  return { headers, text: text.replace(/\r\n/g, '\n') };
}

const badLogin = () => smtpError(535, '5.7.8 Authentication credentials invalid');

/** The credential id a session authenticated with (smtp-server keeps it as session.user). */
const loginOf = (session: SMTPServerSession) => (typeof session.user === 'string' ? session.user : undefined);

export function listenSmtp(inst: SandboxInstance, tls: SandboxTls, host: string, port: number): Promise<Listening> {
  const server = new SMTPServer({
    secure: false,
    key: tls.key,
    cert: tls.cert,
    name: 'smtp.sandbox.local',
    banner: 'notify provider sandbox',
    authMethods: ['PLAIN', 'LOGIN'],
    size: 10 * 1024 * 1024,
    logger: false,
    maxClients: 10_000,
    socketTimeout: 120_000,
    onConnect(_session, callback) {
      const f = inst.faults();
      if (f.hang) return; // no greeting
      if (f.outage) return callback(smtpError(421, '4.3.2 Service not available, closing transmission channel'));
      callback();
    },
    onAuth(auth, _session, callback) {
      const login = auth.username === undefined ? undefined : inst.credential(credentialId.smtp(auth.username), 'smtpLogin');
      if (login !== undefined && login.pass === auth.password) return callback(null, { user: login.id });
      inst.counters.unauthorized++;
      callback(badLogin());
    },
    onMailFrom(address, session: Session, callback) {
      const v = inst.gate();
      session.verdict = v;
      if (v.kind === 'hang') return;
      if (v.kind === 'outage') return inst.later(() => callback(smtpError(421, '4.3.2 Service not available')));
      const login = loginOf(session);
      if (login !== undefined && inst.credential(login, 'smtpLogin') === undefined) {
        inst.counters.unauthorized++;
        return inst.later(() => callback(badLogin()));
      }
      if (v.kind === 'ratelimited') return inst.later(() => callback(smtpError(451, '4.7.1 Rate limit exceeded, try again later')));
      if (address.address !== '' && !EMAIL.test(address.address)) {
        inst.counters.invalid++;
        return callback(smtpError(553, '5.1.7 Bad sender address syntax'));
      }
      callback();
    },
    onRcptTo(address, _session, callback) {
      const a = address.address;
      const refused = inst.listedFailure(a) ?? (!EMAIL.test(a) ? 'invalid' : a.startsWith('bad-') ? 'unregistered' : undefined);
      if (refused === undefined) return callback();
      inst.counters.permanent++;
      // Real servers quote the recipient (Postfix: `550 5.1.1 <a@b>: Recipient address rejected`).
      callback(refused === 'invalid' ? smtpError(553, `5.1.3 <${a}>: Bad recipient address syntax`) : smtpError(550, `5.1.1 <${a}>: The email account that you tried to reach does not exist`));
    },
    onData(stream, session: Session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const receivedAt = Date.now();
        const v = session.verdict;
        if (v?.kind === 'error') return inst.later(() => callback(smtpError(451, '4.3.0 Temporary server error, please try again later')));
        const { headers, text } = parseMail(Buffer.concat(chunks).toString('utf8'));
        const deliveryId = headers.get('x-delivery-id');
        const credential = loginOf(session);
        const id = nextId();
        inst.later(() => {
          const at = Date.now();
          for (const r of session.envelope.rcptTo) {
            inst.record({
              id,
              instance: inst.name,
              address: r.address,
              text,
              receivedAt,
              at,
              ...(credential !== undefined ? { credential } : {}),
              ...(deliveryId !== undefined ? { deliveryId } : {}),
            });
          }
          callback(null, `2.0.0 Ok: queued as ${id}`);
        });
      });
    },
  });
  server.on('error', () => undefined);
  const sockets = new Set<import('node:net').Socket>();
  server.server.on('connection', (socket: import('node:net').Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return new Promise((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(port, host, () => {
      server.server.off('error', reject);
      resolve({
        port: (server.server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            for (const socket of sockets) socket.destroy();
          }),
      });
    });
  });
}
