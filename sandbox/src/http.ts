import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SandboxTls } from './certs';

export type HttpHandler = (req: IncomingMessage, body: Buffer, res: ServerResponse) => void;

export type Listening = { port: number; close(): Promise<void> };

const MAX_BODY = 32 * 1024 * 1024;

/** An HTTPS/1.1 server that hands each request to `handler` with its whole body. */
export function listenHttps(tls: SandboxTls, host: string, port: number, handler: HttpHandler): Promise<Listening> {
  const server = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        res.writeHead(413, { 'content-type': 'application/json' }).end('{"error":"request entity too large"}');
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (size > MAX_BODY) return;
      try {
        handler(req, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), res);
      } catch (err) {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(err));
      }
    });
  });
  // Clients keep connections alive; a server closing idle sockets first races them into ECONNRESET.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 125_000;
  server.requestTimeout = 0;
  server.on('clientError', (_err, socket) => socket.destroy());
  // closeAllConnections() misses sockets still in the TLS handshake; track the raw sockets too.
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (socket: import('node:net').Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            // Hung requests and idle keep-alive sockets would hold close() open.
            server.closeAllConnections();
            for (const socket of sockets) socket.destroy();
          }),
      });
    });
  });
}

/** Writes a JSON answer unless the client has gone. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.destroyed || res.writableEnded) return;
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  if (res.destroyed || res.writableEnded) return;
  res.writeHead(status, { 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function bearer(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  if (h === undefined) return undefined;
  const m = /^bearer\s+(.+)$/i.exec(h);
  return m ? m[1]!.trim() : undefined;
}

export function basicAuth(req: IncomingMessage): { user: string; pass: string } | undefined {
  const h = req.headers.authorization;
  const m = h === undefined ? null : /^basic\s+(.+)$/i.exec(h);
  if (!m) return undefined;
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = text.indexOf(':');
  return i < 0 ? undefined : { user: text.slice(0, i), pass: text.slice(i + 1) };
}

export function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

let seq = 0;
/** A cheap unique id: time plus a process-wide counter. */
export function nextId(): string {
  seq = (seq + 1) % 0x1000000;
  return Date.now().toString(16) + seq.toString(16).padStart(6, '0');
}

export const E164 = /^\+[1-9]\d{1,14}$/;
/** Good enough for the sandbox: local@domain.tld without spaces. */
export const EMAIL = /^[^\s@"<>()]+@[^\s@"<>()]+\.[^\s@"<>()]+$/;
