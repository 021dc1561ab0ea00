import fs from 'node:fs';
import type { Writable } from 'node:stream';
import { once } from 'node:events';
import type { App } from './app';
import { openPrivateFile, writePrivateFile } from '#platform/private-file';
import type { KeyObject } from 'node:crypto';
import { replayAudit, verifyTenantChain, type AuditFilter, type AuditRecord, type TenantChainReport } from '#query/audit/replay';
import { createCheckpoint, readCheckpoint, type CheckpointHead } from '#query/audit/checkpoint';
import { parseSigningKey, parseVerifyKey } from '#platform/crypto/signing';

export class UsageError extends Error {}

export type AuditArgs = Readonly<{
  command: 'export' | 'verify' | 'checkpoint';
  tenantId: string | null;
  userId: string | null;
  notificationId: string | null;
  from: string | null;
  to: string | null;
  format: 'jsonl' | 'csv';
  out: string | null;
  /** verify: a checkpoint file the log must still extend. */
  against: string | null;
  /** verify --against: the public key file (default AUDIT_VERIFY_KEY, or the public half of AUDIT_SIGNING_KEY). */
  key: string | null;
}>;

export const AUDIT_USAGE = `usage:
  notify audit export --tenant <id> [--user <id>] [--notification <id>] [--from <ISO time>] [--to <ISO time>]
                      [--format jsonl|csv] [--out <file>]      (default: JSON Lines on stdout; a file is created 0600)
  notify audit verify [--tenant <id>] [--against <checkpoint file>] [--key <public key file>]
                                                               (every tenant when omitted; exit 1 on a break)
  notify audit checkpoint [--out <file>]                       (signs every tenant's chain head with AUDIT_SIGNING_KEY)`;

const iso = (flag: string, v: string): string => {
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) throw new UsageError(`${flag}: "${v}" is not a date-time (e.g. 2026-11-01T00:00:00Z)`);
  return d.toISOString();
};

const FLAGS: Readonly<Record<AuditArgs['command'], readonly string[]>> = {
  export: ['--tenant', '--user', '--notification', '--from', '--to', '--format', '--out'],
  verify: ['--tenant', '--against', '--key'],
  checkpoint: ['--out'],
};

export const parseAuditArgs = (argv: readonly string[]): AuditArgs => {
  const [command, ...rest] = argv;
  if (command !== 'export' && command !== 'verify' && command !== 'checkpoint') throw new UsageError(`unknown audit command "${command ?? ''}"`);
  const flags = new Map<string, string>();
  for (let i = 0; i < rest.length; i += 2) {
    const flag = rest[i]!;
    const value = rest[i + 1];
    if (!FLAGS[command].includes(flag)) throw new UsageError(`unknown option ${flag} for audit ${command}`);
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
    against: flags.get('--against') ?? null,
    key: flags.get('--key') ?? null,
  };
  if (command === 'export' && !args.tenantId) throw new UsageError('export needs --tenant');
  return args;
};

/** Key material from configuration: the text itself (PEM, base64), or the file it names. */
const material = (value: string): string => {
  const v = value.trim();
  if (!v.includes('-----BEGIN') && (v.startsWith('/') || v.startsWith('./') || v.startsWith('../')) && fs.existsSync(v)) return fs.readFileSync(v, 'utf8');
  return v;
};

const CSV_COLUMNS = ['position', 'at', 'streamName', 'revision', 'type', 'actor', 'requestId', 'prevHash', 'data'] as const;
/**
 * A spreadsheet runs a cell that begins with =, +, -, @, a tab or a carriage return as a formula
 * (CSV injection): such a cell gets a leading apostrophe, which spreadsheets show as text.
 */
const FORMULA_START = /^[=+\-@\t\r]/;
export const csvCell = (v: unknown): string => {
  let s = typeof v === 'string' ? v : v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  if (FORMULA_START.test(s)) s = `'${s}`;
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

export type AuditApp = Pick<App, 'eventStore' | 'cipher'> & Partial<Pick<App, 'chainKeys' | 'config'>>;

const reportLine = (r: TenantChainReport, anchored: CheckpointHead | undefined): string => {
  if (!r.ok) {
    const b = r.firstBreak!;
    return b.streamName
      ? `BROKEN  ${r.tenantId}: first break at position ${b.position} (${b.type}, stream ${b.streamName}, revision ${b.revision}): ${b.reason}\n`
      : `BROKEN  ${r.tenantId}: ${b.reason}\n`;
  }
  const extends_ = anchored ? `, extends the checkpoint (${anchored.events} events at position ${anchored.position})` : '';
  return `ok      ${r.tenantId}: ${r.checked} events, chain intact (head ${r.lastHash.slice(0, 16)}…)${extends_}\n`;
};

const verifyKeyOf = (app: AuditApp, args: AuditArgs): KeyObject => {
  if (args.key) return parseVerifyKey(fs.readFileSync(args.key, 'utf8'));
  const c = app.config;
  if (c?.auditVerifyKey) return parseVerifyKey(material(c.auditVerifyKey));
  if (c?.auditSigningKey) return parseSigningKey(material(c.auditSigningKey));
  throw new UsageError('verify --against needs the public key the checkpoint was signed with: --key <file>, AUDIT_VERIFY_KEY or AUDIT_SIGNING_KEY');
};

export const runAudit = async (app: AuditApp, args: AuditArgs, stdout: Writable = process.stdout, stderr: NodeJS.WriteStream = process.stderr): Promise<number> => {
  if (args.command === 'checkpoint') {
    if (!app.config?.auditSigningKey) throw new UsageError('audit checkpoint needs AUDIT_SIGNING_KEY (an Ed25519 private key: PKCS#8 PEM or a base64 seed; make one: openssl genpkey -algorithm ed25519)');
    const signingKey = parseSigningKey(material(app.config.auditSigningKey));
    const result = await createCheckpoint(app.eventStore, signingKey, { keys: app.chainKeys ?? null, onTenant: (tenantId, r) => stderr.write(reportLine(r, undefined)) });
    if (!result.ok) {
      stderr.write(`no checkpoint signed: ${result.broken.length} tenant chain${result.broken.length === 1 ? ' is' : 's are'} broken\n`);
      return 1;
    }
    if (result.authenticated.length > 0) stderr.write(`authenticated the chain heads of ${result.authenticated.join(', ')} with the current master key\n`);
    const text = JSON.stringify(result.checkpoint, null, 2) + '\n';
    if (args.out) {
      writePrivateFile(args.out, text);
      stderr.write(`checkpoint of ${result.checkpoint.heads.length} tenants written to ${args.out}; keep it outside the store\n`);
    } else await write(stdout, text);
    return 0;
  }
  if (args.command === 'verify') {
    const checkpoint = args.against ? readCheckpoint(fs.readFileSync(args.against, 'utf8'), verifyKeyOf(app, args)) : null;
    const anchors = new Map((checkpoint?.heads ?? []).map((h) => [h.tenantId, h]));
    const listed = args.tenantId ? [args.tenantId] : [...new Set([...(await app.eventStore.tenants()), ...anchors.keys()])].sort();
    if (checkpoint) stdout.write(`checkpoint of ${checkpoint.createdAt}, signed by key ${checkpoint.keyId}: signature valid\n`);
    let broken = 0;
    for (const tenantId of listed) {
      const anchor = anchors.get(tenantId);
      const report = await verifyTenantChain(app.eventStore, tenantId, { keys: app.chainKeys ?? null, anchor: anchor ?? null });
      if (!report.ok) broken++;
      stdout.write(reportLine(report, anchor));
    }
    if (listed.length === 0) stdout.write('no events\n');
    return broken > 0 ? 1 : 0;
  }
  const out: Writable = args.out ? fs.createWriteStream('', { fd: openPrivateFile(args.out) }) : stdout;
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
