import WebSocket from 'ws';
import { createClient } from 'graphql-ws';

const QUERY = `subscription Progress($id: ID!) {
  notificationProgress(notificationId: $id) {
    notificationId status deadline
    progress { recipients total pending succeeded failed expired completion }
  }
}`;

/** `notify watch <id>`: prints one JSON line per progress snapshot until the delivery completes. */
export type Output = Readonly<{ write: (s: string) => unknown }>;

export const watch = async (
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  out: Output = process.stdout,
  err: Output = process.stderr,
): Promise<void> => {
  const [notificationId] = args;
  const apiKey = env['API_KEY'];
  const url = (env['API_URL'] ?? 'http://127.0.0.1:4000/graphql').replace(/^http/, 'ws');
  if (!notificationId || !apiKey) {
    err.write('usage: API_KEY=<key> [API_URL=http://127.0.0.1:4000/graphql] notify watch <notificationId>\n');
    process.exitCode = 2;
    return;
  }
  const client = createClient({ url, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${apiKey}` }, retryAttempts: 0 });
  const timeoutMs = Number(env['WATCH_TIMEOUT_MS'] ?? 0);
  const timer = timeoutMs > 0 ? setTimeout(() => void client.dispose(), timeoutMs) : null;
  try {
    const subscription = client.iterate<{ notificationProgress: { status: string } }>({ query: QUERY, variables: { id: notificationId } });
    for await (const result of subscription) {
      if (result.errors) {
        err.write(`${JSON.stringify(result.errors)}\n`);
        process.exitCode = 1;
        break;
      }
      out.write(`${JSON.stringify(result.data?.notificationProgress)}\n`);
      if (result.data?.notificationProgress.status === 'COMPLETED') break;
    }
  } catch (e) {
    err.write(`watch failed: ${e instanceof Error ? e.message : JSON.stringify(e)}\n`);
    process.exitCode = 1;
  } finally {
    if (timer) clearTimeout(timer);
    await client.dispose();
  }
};
