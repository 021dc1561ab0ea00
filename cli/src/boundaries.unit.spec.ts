import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cycleOf, edgesOf, PROJECTS, violationsOf, workspaceFiles } from './testing/boundaries';

const root = path.resolve(__dirname, '../..');
const aliases = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).imports as Record<string, string>;
const files = workspaceFiles(root);

// Built so this file's own text holds no import the scan would read.
const imp = (what: string, from: string) => ['import ', what, ' from ', "'", from, "';\n"].join('');

const sorted = (edges: Map<string, Set<string>>): Record<string, string[]> =>
  Object.fromEntries([...edges].filter(([, to]) => to.size > 0).sort(([a], [b]) => a.localeCompare(b)).map(([from, to]) => [from, [...to].sort()]));

describe('project boundaries', () => {
  it('no project imports above its layer, the sandbox only from tests and the composition root', () => {
    expect(violationsOf(files, aliases)).toEqual([]);
  });

  it('no project imports one that imports it back', () => {
    expect(cycleOf(edgesOf(files, 'production'))).toBeNull();
    expect(cycleOf(edgesOf(files, 'all'))).toBeNull();
  });

  it('catches a planted upward import, a sideways one, a relative one and a production import of the sandbox', () => {
    const planted = new Map(files);
    planted.set('platform/src/planted.ts', imp('{ startApi }', '#api/start'));
    planted.set('command/src/planted.ts', imp('{ replayAudit }', '#query/audit/replay'));
    planted.set('query/src/planted.ts', imp('{ handleCommand }', '../../command/src/handler'));
    planted.set('delivery/src/planted.ts', imp('{ startSandbox }', '#sandbox/index'));
    planted.set('delivery/src/planted.unit.spec.ts', imp('{ startSandbox }', '#sandbox/index'));
    const found = violationsOf(planted, aliases).map((v) => `${v.file}: ${v.problem}`);
    expect(found).toEqual([
      expect.stringMatching(/^platform\/src\/planted\.ts: platform may not import api/),
      expect.stringMatching(/^command\/src\/planted\.ts: command may not import query/),
      expect.stringMatching(/^query\/src\/planted\.ts: a relative import into command\//),
      expect.stringMatching(/^delivery\/src\/planted\.ts: delivery may not import sandbox/),
    ]);
    planted.set('api/src/planted.ts', imp('{ x }', '#query/no/such/file'));
    expect(violationsOf(planted, aliases).some((v) => v.file === 'api/src/planted.ts' && /resolves to no source file/.test(v.problem))).toBe(true);
    const cyclic = edgesOf(new Map([['command/src/a.ts', imp('x', '#query/x')], ['query/src/b.ts', imp('y', '#command/y')]]));
    expect(cycleOf(cyclic)).toEqual(['command', 'query', 'command']);
  });

  it("Nx's project graph has exactly the edges the imports make", () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nx-graph-')), 'graph.json');
    execFileSync(process.execPath, [require.resolve('nx/bin/nx', { paths: [root] }), 'graph', `--file=${out}`], {
      cwd: root,
      env: { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true', NX_TUI: 'false' },
      stdio: 'pipe',
      timeout: 120_000,
    });
    const graph = JSON.parse(fs.readFileSync(out, 'utf8')).graph as { nodes: Record<string, unknown>; dependencies: Record<string, { target: string }[]> };
    expect(Object.keys(graph.nodes).sort()).toEqual([...PROJECTS].sort());
    const nx = new Map(PROJECTS.map((p) => [p, new Set((graph.dependencies[p] ?? []).map((d) => d.target).filter((t) => !t.startsWith('npm:')))]));
    expect(sorted(nx)).toEqual(sorted(edgesOf(files, 'all')));
  }, 150_000);
});
