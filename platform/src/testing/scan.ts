import fs from 'node:fs/promises';
import path from 'node:path';

const CHUNK = 1 << 20;

const filesUnder = async (dir: string): Promise<string[]> => {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : Promise.resolve(e.isFile() ? [path.join(dir, e.name)] : []))),
  );
  return nested.flat().sort();
};

type Pattern = Readonly<{ needle: string; forms: readonly Buffer[] }>;

/** Which patterns occur in one file, read in chunks that overlap by a needle's length. */
const scanFile = async (file: string, patterns: readonly Pattern[], longest: number): Promise<Set<Pattern>> => {
  const found = new Set<Pattern>();
  const handle = await fs.open(file, 'r');
  try {
    let carry = Buffer.alloc(0);
    const chunk = Buffer.alloc(CHUNK);
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, CHUNK, null);
      if (bytesRead === 0) break;
      const window = Buffer.concat([carry, chunk.subarray(0, bytesRead)]);
      for (const p of patterns) if (!found.has(p) && p.forms.some((f) => window.includes(f))) found.add(p);
      if (found.size === patterns.length) break;
      carry = Buffer.from(window.subarray(Math.max(0, window.length - (longest - 1))));
    }
  } finally {
    await handle.close();
  }
  return found;
};

/**
 * Every needle found in the raw bytes of every file under `dir` (database, WAL, shared memory,
 * journal), strings as UTF-8 and as UTF-16LE, buffers as raw bytes (reported in hex), one hit
 * per needle and file: the proof that data is not stored in clear, and that destroyed keys are
 * really gone. Files are read in chunks, so a large store does not have to fit in memory.
 */
export const scanFiles = async (dir: string, needles: readonly (string | Buffer)[]): Promise<{ file: string; needle: string }[]> => {
  const patterns: Pattern[] = needles.map((needle) => {
    if (needle.length === 0) throw new Error('scanFiles: an empty needle matches everything');
    return typeof needle === 'string'
      ? { needle, forms: [Buffer.from(needle, 'utf8'), Buffer.from(needle, 'utf16le')] }
      : { needle: needle.toString('hex'), forms: [needle] };
  });
  if (patterns.length === 0) return [];
  const longest = Math.max(...patterns.flatMap((p) => p.forms.map((f) => f.length)));
  const hits: { file: string; needle: string }[] = [];
  for (const file of await filesUnder(dir)) {
    // A WAL or journal can disappear between listing and reading, when a store closes.
    const found = await scanFile(file, patterns, longest).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return new Set<Pattern>();
      throw e;
    });
    for (const p of patterns) if (found.has(p)) hits.push({ file: path.relative(dir, file), needle: p.needle });
  }
  return hits;
};
