import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { generate } from 'selfsigned';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallAgent } from './call-agent';

describe('CallAgent connection pool', () => {
  let server: https.Server;
  let port: number;
  let connections = 0;
  let requests = 0;
  let ca: string;

  beforeAll(async () => {
    const pems = await generate([{ name: 'commonName', value: 'localhost' }], { keyType: 'ec', curve: 'P-256', algorithm: 'sha256' });
    ca = pems.cert;
    // Answers after every request of a burst arrived, so the burst needs one connection per request.
    let waiting: Array<() => void> = [];
    let burst = 0;
    server = https.createServer({ key: pems.private, cert: pems.cert }, (_req, res) => {
      requests++;
      waiting.push(() => res.end('ok'));
      if (waiting.length === burst) {
        for (const answer of waiting) answer();
        waiting = [];
      }
    });
    server.keepAliveTimeout = 60_000;
    server.on('secureConnection', () => connections++);
    (server as unknown as { setBurst: (n: number) => void }).setBurst = (n) => (burst = n);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const burst = (agent: CallAgent, n: number) => {
    (server as unknown as { setBurst: (n: number) => void }).setBurst(n);
    return Promise.all(Array.from({ length: n }, () => new Promise<void>((resolve, reject) => {
      https.get({ host: '127.0.0.1', port, path: '/', agent, ca, servername: 'localhost' }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      }).on('error', reject);
    })));
  };

  it('keeps every connection of a burst above 256 open for the next one (no new TLS handshakes)', async () => {
    const agent = new CallAgent({ keepAlive: true, maxSockets: 300 });
    try {
      await burst(agent, 300);
      expect(connections).toBe(300);
      // Let the released sockets settle in the free pool.
      await new Promise((r) => setTimeout(r, 50));
      await burst(agent, 300);
      expect(connections).toBe(300);
    } finally {
      agent.destroy();
    }
  });

  it('sets up at most maxConnecting connections at once: a burst to a new host opens them a few at a time, and each request still gets its own', async () => {
    connections = 0;
    const agent = new CallAgent({ keepAlive: true, maxSockets: 64, maxConnecting: 4 });
    try {
      const done = burst(agent, 64);
      let most = agent.settingUp;
      const watch = setInterval(() => (most = Math.max(most, agent.settingUp)), 1);
      await done;
      clearInterval(watch);
      expect(most).toBe(4);
      expect(connections).toBe(64);
      expect(agent.settingUp).toBe(0);
    } finally {
      agent.destroy();
    }
  });

  it('cancels a request waiting for a handshake slot without writing it', async () => {
    requests = 0;
    const agent = new CallAgent({ keepAlive: true, maxSockets: 8, maxConnecting: 1 });
    (server as unknown as { setBurst: (n: number) => void }).setBurst(1);
    const get = () => new Promise<string>((resolve) => {
      https.get({ host: '127.0.0.1', port, path: '/', agent, ca, servername: 'localhost' }, (res) => {
        res.resume();
        res.on('end', () => resolve('answered'));
      }).on('error', (e: Error & { code?: string }) => resolve(e.code ?? e.message));
    });
    try {
      const controller = new AbortController();
      const results = await agent.run(controller.signal, async () => {
        const first = get();
        const second = get();
        // The second waits for the first connection's handshake: it is cancelled there.
        controller.abort(new Error('deadline'));
        return Promise.all([first, second]);
      });
      expect(results[1]).toBe('ECANCELED');
      expect(requests).toBe(0);
    } finally {
      agent.destroy();
    }
  });
});
