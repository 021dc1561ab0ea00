import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './testing/harness';

/**
 * deploy/observability: the dashboard's and the alerts' queries name only metrics the service
 * exports (every role runs in the harness, so every metric is registered), and promtool checks
 * and unit-tests the alerting rules.
 */
const root = path.resolve(__dirname, '../..');
const dir = path.join(root, 'deploy/observability');

/** Metrics outside the service an alert may use: kube-state-metrics' view of the audit-verify CronJob. */
const EXTERNAL = new Set(['kube_job_status_failed']);

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan']);

/** The metric names a PromQL expression selects: identifiers that are not functions, keywords, labels or strings. */
export const metricNames = (expr: string): string[] => {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\w+|\$\{[^}]*\}/g, ' ');
  const names: string[] = [];
  for (const m of bare.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const after = bare.slice(m.index! + m[0].length).trimStart();
    if (after.startsWith('(') || KEYWORDS.has(m[0].toLowerCase())) continue;
    if (/^\d/.test(m[0])) continue;
    names.push(m[0]);
  }
  return names;
};

type Panel = { title: string; targets?: { expr: string }[]; panels?: Panel[] };

const dashboardExprs = (): { where: string; expr: string }[] => {
  const d = JSON.parse(fs.readFileSync(path.join(dir, 'dashboard.json'), 'utf8')) as { panels: Panel[]; templating: { list: { name: string; query?: unknown }[] } };
  const panels = d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
  const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: p.title, expr: t.expr })));
  for (const v of d.templating.list) {
    const q = typeof v.query === 'object' && v.query ? (v.query as { query: string }).query : undefined;
    const inner = q && /label_values\(([^,)]+)/.exec(q)?.[1];
    if (inner) exprs.push({ where: `variable ${v.name}`, expr: inner });
  }
  return exprs;
};

const alertExprs = (): { where: string; expr: string }[] => {
  const text = fs.readFileSync(path.join(dir, 'alerts.yml'), 'utf8');
  // The rules file's expr values: a block scalar (expr: |) or one line.
  const out: { where: string; expr: string }[] = [];
  const lines = text.split('\n');
  let alert = '';
  for (let i = 0; i < lines.length; i++) {
    const a = /^\s*- alert:\s*(\S+)/.exec(lines[i]!);
    if (a) alert = a[1]!;
    const e = /^(\s*)expr:\s*(.*)$/.exec(lines[i]!);
    if (!e) continue;
    if (e[2]!.trim() !== '|') {
      out.push({ where: alert, expr: e[2]! });
      continue;
    }
    const body: string[] = [];
    for (let j = i + 1; j < lines.length && (lines[j]!.trim() === '' || lines[j]!.search(/\S/) > e[1]!.length); j++) body.push(lines[j]!);
    out.push({ where: alert, expr: body.join('\n') });
  }
  return out;
};

const promtool = (): string | null => {
  for (const candidate of [path.join(root, '.local/bin/promtool'), ...(process.env['PATH'] ?? '').split(':').map((p) => path.join(p, 'promtool'))]) {
    if (fs.existsSync(candidate)) return candidate;
  }
  return null;
};

describe('deploy/observability: alerts and dashboard on the exported metrics', () => {
  let h: Harness;
  let exported: Set<string>;

  beforeAll(async () => {
    h = await startHarness();
    const metrics = await h.app.metrics.registry.getMetricsAsJSON();
    exported = new Set(metrics.flatMap((m) => (String(m.type) === 'histogram' ? [`${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`] : String(m.type) === 'summary' ? [m.name, `${m.name}_sum`, `${m.name}_count`] : [m.name])));
  });
  afterAll(() => h.stop());

  it('reads metric names out of PromQL (the check can fail)', () => {
    expect(metricNames('sum by (le, integration) (rate(notify_delivery_attempt_seconds_bucket{tenant=~"$tenant"}[5m])) / clamp_min(x_total, 0.5) > 600 and up')).toEqual(['notify_delivery_attempt_seconds_bucket', 'x_total', 'up']);
  });

  it('every dashboard query names only metrics the service exports, and every panel has one', () => {
    const exprs = dashboardExprs();
    expect(exprs.length).toBeGreaterThan(15);
    const unknown = exprs.flatMap(({ where, expr }) => metricNames(expr).filter((n) => !exported.has(n)).map((n) => `${where}: ${n}`));
    expect(unknown).toEqual([]);
    for (const { where, expr } of exprs) expect(metricNames(expr).length, where).toBeGreaterThan(0);
  });

  it('every alert names only exported metrics (or the audit CronJob\'s), and the ones the issue asks for exist', () => {
    const exprs = alertExprs();
    const unknown = exprs.flatMap(({ where, expr }) => metricNames(expr).filter((n) => !exported.has(n) && !EXTERNAL.has(n)).map((n) => `${where}: ${n}`));
    expect(unknown).toEqual([]);
    expect(exprs.map((e) => e.where)).toEqual(expect.arrayContaining(['NotifyDeadlineAtRisk', 'NotifyDeliveriesExpiring', 'NotifyBreakerOpen', 'NotifyProjectionLagRising', 'NotifyConsumerLagRising', 'NotifyExpiryBacklogOld', 'NotifyAuditChainVerifyFailed']));
  });

  const tool = promtool();
  if (!tool) console.warn('promtool checks skipped: no promtool in .local/bin or on PATH (.ci/run installs it: go install github.com/prometheus/prometheus/cmd/promtool)');
  it.skipIf(!tool)('promtool check rules and promtool test rules pass', () => {
    const check = execFileSync(tool!, ['check', 'rules', 'alerts.yml'], { cwd: dir, encoding: 'utf8' });
    expect(check).toMatch(/SUCCESS: \d+ rules found/);
    const test = execFileSync(tool!, ['test', 'rules', 'alerts.test.yml'], { cwd: dir, encoding: 'utf8' });
    expect(test).toMatch(/SUCCESS/);
  }, 60_000);
});
