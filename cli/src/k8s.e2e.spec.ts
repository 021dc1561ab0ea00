import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from './config';

/**
 * deploy/k8s: every overlay renders (kustomize), every object validates against its schema
 * (kubernetes-models for core objects; the Strimzi and KEDA CRDs' schemas from their
 * @kubernetes-models packages), and the references hold: every ConfigMap and Secret a workload
 * names exists, every probe targets the ops port the process opens with that configuration,
 * every environment variable is one the configuration loader reads and the whole configuration
 * loads, every grace period exceeds the drain time, every Service, PDB and scaler selects a workload.
 */
const root = path.resolve(__dirname, '../..');
const OVERLAYS = ['embedded', 'scaled'];

const kustomize = ((): string | null => {
  for (const c of [path.join(root, '.local/bin/kustomize'), ...(process.env['PATH'] ?? '').split(':').map((p) => path.join(p, 'kustomize'))]) if (fs.existsSync(c)) return c;
  return null;
})();
if (!kustomize) console.warn('k8s manifest tests skipped: no kustomize in .local/bin or on PATH (.ci/run installs it: go install sigs.k8s.io/kustomize/kustomize/v5)');

type Obj = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; spec?: any; data?: Record<string, string> };
type Container = { name: string; args?: string[]; env?: { name: string; value?: string; valueFrom?: any }[]; envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[]; ports?: { name?: string; containerPort: number }[]; volumeMounts?: { name: string; mountPath: string }[]; [probe: string]: any };

const render = (overlay: string): Obj[] =>
  parseAllDocuments(execFileSync(kustomize!, ['build', path.join(root, 'deploy/k8s', overlay)], { encoding: 'utf8' }))
    .map((d) => d.toJS() as Obj)
    .filter(Boolean);

const podSpecOf = (o: Obj): any => (o.kind === 'CronJob' ? o.spec.jobTemplate.spec.template.spec : ['Deployment', 'StatefulSet'].includes(o.kind) ? o.spec.template.spec : null);
const podLabelsOf = (o: Obj): Record<string, string> => (o.kind === 'CronJob' ? o.spec.jobTemplate.spec.template.metadata.labels : o.spec.template.metadata.labels) ?? {};
const selects = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);

/** The module that validates an object of this apiVersion and kind. */
const modelOf = async (apiVersion: string, kind: string): Promise<(new (o: unknown) => { validate(): void }) | null> => {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const spec = group === 'kafka.strimzi.io' ? `@kubernetes-models/strimzi-kafka-operator/${group}/${version}`
    : group === 'keda.sh' ? `@kubernetes-models/keda/${group}/${version}`
      : `kubernetes-models/${group ? `${group}/` : ''}${version}`;
  const mod = (await import(spec)) as Record<string, new (o: unknown) => { validate(): void }>;
  return mod[kind] ?? null;
};

/** loadConfig over the environment, recording every variable it reads. */
const loadRecording = (env: Record<string, string>) => {
  const read = new Set<string>();
  const proxy = new Proxy(env, { get: (t, k) => (typeof k === 'string' && read.add(k), t[k as string]) });
  return { config: loadConfig(proxy), read };
};

describe.skipIf(!kustomize)('deploy/k8s overlays', () => {
  for (const overlay of OVERLAYS) {
    describe(overlay, () => {
      const objects = kustomize ? render(overlay) : [];
      const named = (kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name);
      const workloads = objects.filter((o) => podSpecOf(o));

      it('renders, and every object validates against its schema', async () => {
        expect(workloads.length).toBeGreaterThan(0);
        const problems: string[] = [];
        for (const o of objects) {
          const Model = await modelOf(o.apiVersion, o.kind);
          if (!Model) {
            problems.push(`${o.kind}/${o.metadata.name}: no schema for ${o.apiVersion}`);
            continue;
          }
          try {
            new Model(o).validate();
          } catch (e) {
            problems.push(`${o.kind}/${o.metadata.name}: ${(e as Error).message.slice(0, 500)}`);
          }
        }
        expect(problems).toEqual([]);
      });

      it('the schema check can fail (a wrong field type is refused)', async () => {
        const d = workloads.find((o) => o.kind !== 'CronJob')!;
        const Model = (await modelOf(d.apiVersion, d.kind))!;
        expect(() => new Model({ ...d, spec: { ...d.spec, replicas: 'two' } }).validate()).toThrow();
      });

      it('every ConfigMap and Secret a workload names exists, and every variable it sets is one the configuration loader reads', () => {
        for (const w of workloads) {
          const pod = podSpecOf(w);
          for (const v of pod.volumes ?? []) {
            if (v.secret) expect(named('Secret', v.secret.secretName), `${w.metadata.name}: volume secret ${v.secret.secretName}`).toBeDefined();
            if (v.configMap) expect(named('ConfigMap', v.configMap.name), `${w.metadata.name}: volume configMap ${v.configMap.name}`).toBeDefined();
          }
          if (pod.serviceAccountName) expect(named('ServiceAccount', pod.serviceAccountName)).toBeDefined();
          // The servers' own pods (KurrentDB, MongoDB) have their own variables and probes.
          if (podLabelsOf(w)['app.kubernetes.io/name'] !== 'notify') continue;
          for (const c of pod.containers as Container[]) {
            const env: Record<string, string> = {};
            for (const from of c.envFrom ?? []) {
              if (from.configMapRef) {
                const cm = named('ConfigMap', from.configMapRef.name);
                expect(cm, `${w.metadata.name}: configMap ${from.configMapRef.name}`).toBeDefined();
                Object.assign(env, cm!.data);
              }
              if (from.secretRef) expect(named('Secret', from.secretRef.name)).toBeDefined();
            }
            for (const e of c.env ?? []) {
              if (e.valueFrom?.secretKeyRef) expect(named('Secret', e.valueFrom.secretKeyRef.name), `${w.metadata.name}: secret ${e.valueFrom.secretKeyRef.name}`).toBeDefined();
              if (e.valueFrom?.configMapKeyRef) expect(named('ConfigMap', e.valueFrom.configMapKeyRef.name)).toBeDefined();
              // Values from Secrets are set out of band; a valid stand-in of each.
              env[e.name] = e.value ?? (e.name === 'MASTER_KEY' ? randomBytes(32).toString('base64') : 'x');
            }
            // PROVIDERS_FILE must be on a mounted Secret; the loader reads a stand-in.
            if (env['PROVIDERS_FILE']) {
              const mount = (c.volumeMounts ?? []).find((m) => env['PROVIDERS_FILE']!.startsWith(`${m.mountPath}/`));
              expect(mount, `${w.metadata.name}: PROVIDERS_FILE is on no mounted volume`).toBeDefined();
              expect(pod.volumes.find((v: any) => v.name === mount!.name).secret, 'PROVIDERS_FILE comes from a Secret').toBeDefined();
              const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'k8s-')), 'providers.json');
              fs.writeFileSync(file, '[]');
              env['PROVIDERS_FILE'] = file;
            }
            const { config, read } = loadRecording(env);
            expect(Object.keys(env).filter((k) => !read.has(k)), `${w.metadata.name}: variables the loader never reads`).toEqual([]);

            if (w.kind === 'CronJob') continue;
            // Probes on the ops port this configuration opens, the drain inside the grace period.
            const ports = new Map((c.ports ?? []).map((p) => [p.name, p.containerPort]));
            for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
              const port = c[probe]?.httpGet?.port;
              expect(port, `${w.metadata.name}: ${probe}`).toBeDefined();
              expect(typeof port === 'number' ? port : ports.get(port), `${w.metadata.name}: ${probe} port`).toBe(config.ops.port);
            }
            expect(c['startupProbe'].httpGet.path).toBe('/startupz');
            expect(c['livenessProbe'].httpGet.path).toBe('/livez');
            expect(c['readinessProbe'].httpGet.path).toBe('/readyz');
            expect((pod.terminationGracePeriodSeconds ?? 30) * 1000, `${w.metadata.name}: grace period vs SHUTDOWN_DRAIN_MS`).toBeGreaterThan(config.ops.drainMs);
            expect(c['resources']?.requests && c['resources']?.limits, `${w.metadata.name}: requests and limits`).toBeTruthy();
            if (config.roles.includes('api')) expect(ports.get('http')).toBe(config.port);
          }
        }
      });

      it('every Service, PodDisruptionBudget, autoscaler and Ingress points at something that exists', () => {
        const pods = objects.filter((o) => podSpecOf(o)).map((o) => podLabelsOf(o));
        for (const s of objects.filter((o) => o.kind === 'Service')) expect(pods.some((l) => selects(s.spec.selector, l)), `Service/${s.metadata.name}`).toBe(true);
        for (const p of objects.filter((o) => o.kind === 'PodDisruptionBudget')) expect(pods.some((l) => selects(p.spec.selector.matchLabels, l)), `PDB/${p.metadata.name}`).toBe(true);
        for (const h of objects.filter((o) => o.kind === 'HorizontalPodAutoscaler' || o.kind === 'ScaledObject')) {
          expect(named(h.spec.scaleTargetRef.kind ?? 'Deployment', h.spec.scaleTargetRef.name), `${h.kind}/${h.metadata.name}`).toBeDefined();
        }
        for (const i of objects.filter((o) => o.kind === 'Ingress')) {
          for (const rule of i.spec.rules) for (const p of rule.http.paths) expect(named('Service', p.backend.service.name)).toBeDefined();
          expect(i.spec.tls?.length, 'the API is served over TLS').toBeGreaterThan(0);
        }
        for (const t of objects.filter((o) => o.kind === 'KafkaTopic' || o.kind === 'KafkaNodePool')) expect(named('Kafka', t.metadata.labels!['strimzi.io/cluster']!)).toBeDefined();
      });
    });
  }

  it('the scaled overlay runs every role on its own, expiry with two replicas, delivery scaled on consumer lag, each behind a PDB and a NetworkPolicy', () => {
    const objects = render('scaled');
    const deployments = objects.filter((o) => o.kind === 'Deployment');
    const roleOf = (d: Obj) => (podSpecOf(d).containers[0].env as { name: string; value: string }[]).find((e) => e.name === 'ROLES')!.value;
    expect(deployments.map(roleOf).sort()).toEqual(['api', 'delivery', 'expiry', 'projections']);
    expect(deployments.find((d) => roleOf(d) === 'expiry')!.spec.replicas).toBe(2);
    expect(objects.find((o) => o.kind === 'ScaledObject')!.spec.triggers[0].type).toBe('kafka');
    expect(objects.find((o) => o.kind === 'HorizontalPodAutoscaler')!.spec.scaleTargetRef.name).toBe('notify-api');
    for (const d of deployments) {
      const labels = podLabelsOf(d);
      expect(objects.some((o) => o.kind === 'PodDisruptionBudget' && selects(o.spec.selector.matchLabels, labels)), d.metadata.name).toBe(true);
      const policies = objects.filter((o) => o.kind === 'NetworkPolicy' && (selects(o.spec.podSelector.matchLabels ?? {}, labels) && (o.spec.podSelector.matchExpressions ?? []).every((e: any) => e.values.includes(labels[e.key]))));
      expect(policies.length, d.metadata.name).toBeGreaterThan(1);
    }
    const topics = objects.filter((o) => o.kind === 'KafkaTopic').map((t) => t.metadata.name);
    expect(topics).toEqual(expect.arrayContaining(['notify.deliveries', 'notify.deliveries.dlq']));
  });
});
