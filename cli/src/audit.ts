import fs from 'node:fs';
import type { Writable } from 'node:stream';
import { once } from 'node:events';
import type { App } from './app';
import { replayAudit, verifyTenantChain, type AuditFilter, type AuditRecord } from '#query/audit/replay';

export class UsageError extends Error {}

export type AuditArgs = Readonly<{
  command: 'export' | 'verify';
  tenantId: string | null;
  userId: string | null;
  notificationId: string | null;
  from: string | null;
  to: string | null;
  format: 'jsonl' | 'csv';
  out: string | null;
}>;

export const AUDIT_USAGE = `usage:
  notify audit export --tenant <id> [--user <id>] [--notification <id>] [--from <ISO time>] [--to <ISO time>]
                      [--format jsonl|csv] [--out <file>]      (default: JSON Lines on stdout)
  notify audit verify [--tenant <id>]                          (every tenant when omitted; exit 1 on a break)`;

const iso = (flag: string, v: string): string => {
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) throw new UsageError(`${flag}: "${v}" is not a date-time (e.g. 2026-11-01T00:00:00Z)`);
  return d.toISOString();
};

export const parseAuditArgs = (argv: readonly string[]): AuditArgs => {
  const [command, ...rest] = argv;
  if (command !== 'export' && command !== 'verify') throw new UsageError(`unknown audit command "${command ?? ''}"`);
  const flags = new Map<string, string>();
  for (let i = 0; i < rest.length; i += 2) {
    const flag = rest[i]!;
    const value = rest[i + 1];
    if (!['--tenant', '--user', '--notification', '--from', '--to', '--format', '--out'].includes(flag)) throw new UsageError(`unknown option ${flag}`);
    if (value === undefined || value.startsWith('--')) throw new UsageError(`${flag} needs a value`);
    flags.set(flag, value);
  }
  const format = flags.get('--format') ?? 'jsonl';
  if (format !== 'jsonl' && format !== 'csv') throw new UsageError(`--format must be jsonl or csv, got "${format}"`);
  const args: AuditArgs = {
    command,
    tenantId: flags.get('--tenant') ?? null,
    userId: flags.get('--user') ?? null,
    notificationId: flags.get('--notification') ?? null,
    from: flags.has('--from') ? iso('--from', flags.get('--from')!) : null,
    to: flags.has('--to') ? iso('--to', flags.get('--to')!) : null,
    format,
    out: flags.get('--out') ?? null,
  };
  if (command === 'export' && !args.tenantId) throw new UsageError('export needs --tenant');
  return args;
};

const CSV_COLUMNS = ['position', 'at', 'streamName', 'revision', 'type', 'actor', 'requestId', 'prevHash', 'data'] as const;
const csvCell = (v: unknown): string => {
  const s = typeof v === 'string' ? v : v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};
export const csvLine = (r: AuditRecord): string => CSV_COLUMNS.map((c) => csvCell(r[c])).join(',') + '\n';

/** A one-line progress bar on a terminal; silent otherwise (pipes, CI logs). */
const progress = (stream: NodeJS.WriteStream, total: number) => {
  const started = Date.now();
  let last = 0;
  return {
    update: (done: number, position: number) => {
      if (!stream.isTTY || Date.now() - last < 100) return;
      last = Date.now();
      const share = total === 0 ? 1 : Math.min(1, position / total);
      const rate = done / Math.max(0.001, (Date.now() - started) / 1000);
      stream.write(`\r[${'#'.repeat(Math.round(share * 30)).padEnd(30, '-')}] ${(share * 100).toFixed(0).padStart(3)}%  ${done.toLocaleString('en')} events  ${Math.round(rate).toLocaleString('en')}/s `);
    },
    done: () => {
      if (stream.isTTY) stream.write('\n');
    },
  };
};

const write = async (out: Writable, chunk: string): Promise<void> => {
  if (!out.write(chunk)) await once(out, 'drain');
};

export const runAudit = async (app: Pick<App, 'eventStore' | 'cipher'>, args: AuditArgs, stdout: Writable = process.stdout, stderr: NodeJS.WriteStream = process.stderr): Promise<number> => {
  if (args.command === 'verify') {
    const tenants = args.tenantId ? [args.tenantId] : await app.eventStore.tenants();
    let broken = 0;
    for (const tenantId of tenants) {
      const report = await verifyTenantChain(app.eventStore, tenantId);
      if (report.ok) stdout.write(`ok      ${tenantId}: ${report.checked} events, chain intact (head ${report.lastHash.slice(0, 16)}…)\n`);
      else {
        broken++;
        const b = report.firstBreak!;
        stdout.write(`BROKEN  ${tenantId}: first break at position ${b.position} (${b.type}, stream ${b.streamName}, revision ${b.revision}): ${b.reason}\n`);
      }
    }
    if (tenants.length === 0) stdout.write('no events\n');
    return broken > 0 ? 1 : 0;
  }
  const out: Writable = args.out ? fs.createWriteStream(args.out) : stdout;
  const filter: AuditFilter = { tenantId: args.tenantId!, userId: args.userId, notificationId: args.notificationId, from: args.from, to: args.to };
  const bar = progress(stderr, await app.eventStore.headPosition());
  if (args.format === 'csv') await write(out, CSV_COLUMNS.join(',') + '\n');
  let count = 0;
  for await (const record of replayAudit(app.eventStore, app.cipher, filter)) {
    await write(out, args.format === 'csv' ? csvLine(record) : JSON.stringify(record) + '\n');
    bar.update(++count, record.position);
  }
  bar.done();
  if (args.out) {
    out.end();
    await once(out, 'finish');
    stderr.write(`${count} events written to ${args.out}\n`);
  }
  return 0;
};
