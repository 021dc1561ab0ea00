import fs from 'node:fs';
import path from 'node:path';

/**
 * The layers of the workspace, lowest first. A project may import the projects listed for it and
 * nothing else; tests (specs, test support, `testing/` folders) may also import the sandbox and
 * the cli's test helpers. Relative imports stay inside a project, so every edge between projects
 * is an alias that Nx's project graph reads.
 */
export const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  platform: [],
  schema: ['platform'],
  projections: ['platform', 'schema'],
  command: ['platform', 'schema'],
  query: ['platform', 'schema', 'projections'],
  delivery: ['platform', 'schema', 'projections', 'command'],
  expiry: ['platform', 'schema', 'projections', 'command'],
  // A development and test tool, standing alone: its provider configuration is plain data.
  sandbox: [],
  api: ['platform', 'schema', 'projections', 'command', 'query'],
  // The composition root.
  cli: ['platform', 'schema', 'projections', 'command', 'query', 'delivery', 'expiry', 'sandbox', 'api'],
  bench: ['platform', 'schema', 'projections', 'command', 'query', 'delivery', 'expiry', 'sandbox', 'api', 'cli'],
  // The browser app: it speaks GraphQL to the api role and imports none of the service.
  dashboard: [],
};

export const PROJECTS = Object.keys(ALLOWED);

/** Only tests reach these from elsewhere. */
const TEST_ONLY = ['sandbox'];

export const isTestFile = (file: string): boolean =>
  /\.spec\.ts$/.test(file) || /\.test-support\.ts$/.test(file) || /(^|\/)testing\//.test(file);

export type Import = Readonly<{ file: string; specifier: string; line: number }>;
export type Violation = Readonly<{ file: string; line: number; specifier: string; problem: string }>;

const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\brequire\s*\(\s*)'([^']+)'/g;

export const importsOf = (file: string, text: string): Import[] => {
  const out: Import[] = [];
  for (const m of text.matchAll(IMPORT)) {
    out.push({ file, specifier: m[1]!, line: text.slice(0, m.index).split('\n').length });
  }
  return out;
};

export const projectOf = (file: string): string | null => {
  const top = file.split('/')[0]!;
  return PROJECTS.includes(top) ? top : null;
};

/** The project an import reaches, or null for a package or a built-in module. */
export const targetOf = (imp: Import): string | null => {
  if (imp.specifier.startsWith('#')) return imp.specifier.slice(1).split('/')[0]!;
  if (imp.specifier.startsWith('.')) return projectOf(path.posix.normalize(path.posix.join(path.posix.dirname(imp.file), imp.specifier)));
  return null;
};

/** Project edges (source → targets) among the given files' imports. */
export const edgesOf = (files: ReadonlyMap<string, string>, which: 'all' | 'production' = 'all'): Map<string, Set<string>> => {
  const edges = new Map<string, Set<string>>(PROJECTS.map((p) => [p, new Set<string>()]));
  for (const [file, text] of files) {
    if (which === 'production' && isTestFile(file)) continue;
    const from = projectOf(file);
    if (!from) continue;
    for (const imp of importsOf(file, text)) {
      const to = targetOf(imp);
      if (to && to !== from) edges.get(from)!.add(to);
    }
  }
  return edges;
};

/** A cycle among the projects, as a path that returns to its start, or null. */
export const cycleOf = (edges: ReadonlyMap<string, ReadonlySet<string>>): string[] | null => {
  const state = new Map<string, 'open' | 'done'>();
  const walk = (node: string, trail: string[]): string[] | null => {
    if (state.get(node) === 'open') return [...trail.slice(trail.indexOf(node)), node];
    if (state.get(node) === 'done') return null;
    state.set(node, 'open');
    for (const next of edges.get(node) ?? []) {
      const found = walk(next, [...trail, node]);
      if (found) return found;
    }
    state.set(node, 'done');
    return null;
  };
  for (const node of edges.keys()) {
    const found = walk(node, []);
    if (found) return found;
  }
  return null;
};

/**
 * Every import that breaks the layering: an upward or sideways import, the sandbox outside tests
 * and the composition root, a relative import into another project, an alias that names no file.
 */
export const violationsOf = (files: ReadonlyMap<string, string>, aliases: Readonly<Record<string, string>>): Violation[] => {
  const out: Violation[] = [];
  for (const [file, text] of files) {
    const from = projectOf(file);
    if (!from) continue;
    const test = isTestFile(file);
    for (const imp of importsOf(file, text)) {
      const to = targetOf(imp);
      const report = (problem: string) => out.push({ file, line: imp.line, specifier: imp.specifier, problem });
      if (imp.specifier.startsWith('#')) {
        if (!aliasTarget(imp.specifier, aliases, files)) report('the alias resolves to no source file through package.json "imports"');
      }
      if (!to || to === from) continue;
      if (imp.specifier.startsWith('.')) {
        report(`a relative import into ${to}/: import it as #${to}/...`);
        continue;
      }
      const allowed = ALLOWED[from]?.includes(to) || (test && (TEST_ONLY.includes(to) || imp.specifier.startsWith('#cli/testing/')) && from !== 'platform');
      if (!allowed) report(`${from} may not import ${to} (allowed: ${ALLOWED[from]?.join(', ') || 'nothing'})`);
    }
  }
  return out;
};

/** The source file an alias stands for at run time: package.json maps it into dist/, mirrored from the sources. */
const aliasTarget = (specifier: string, aliases: Readonly<Record<string, string>>, files: ReadonlyMap<string, string>): string | null => {
  let target: string | null = null;
  if (aliases[specifier]) target = aliases[specifier]!;
  else {
    for (const [pattern, to] of Object.entries(aliases)) {
      const star = pattern.indexOf('*');
      if (star < 0) continue;
      const prefix = pattern.slice(0, star);
      if (specifier.startsWith(prefix)) {
        target = to.replace('*', specifier.slice(prefix.length));
        break;
      }
    }
  }
  if (!target) return null;
  const source = target.replace(/^\.\/dist\//, '').replace(/\.js$/, '.ts');
  return files.has(source) ? source : null;
};

/** Every TypeScript file of the workspace's projects, by path relative to `root`. */
export const workspaceFiles = (root: string): Map<string, string> => {
  const files = new Map<string, string>();
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = path.posix.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules' && entry.name !== 'dist') walk(rel);
      } else if (/\.tsx?$/.test(entry.name)) files.set(rel, fs.readFileSync(path.join(root, rel), 'utf8'));
    }
  };
  for (const p of PROJECTS) if (fs.existsSync(path.join(root, p))) walk(p);
  return files;
};
