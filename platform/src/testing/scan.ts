import fs from 'node:fs/promises';
import path from 'node:path';

const filesUnder = async (dir: string): Promise<string[]> => {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : Promise.resolve(e.isFile() ? [path.join(dir, e.name)] : []))),
  );
  return nested.flat();
};

/**
 * Every occurrence of every needle in the raw bytes of every file under `dir` (database, WAL,
 * shared memory, journal), strings as UTF-8 and as UTF-16LE, buffers as raw bytes (reported in
 * hex): the proof that data is not stored in clear, and that destroyed keys are really gone.
 */
export const scanFiles = async (dir: string, needles: readonly (string | Buffer)[]): Promise<{ file: string; needle: string }[]> => {
  const hits: { file: string; needle: string }[] = [];
  const patterns = needles.map((needle) =>
    typeof needle === 'string'
      ? { needle, forms: [Buffer.from(needle, 'utf8'), Buffer.from(needle, 'utf16le')] }
      : { needle: needle.toString('hex'), forms: [needle] },
  );
  for (const file of await filesUnder(dir)) {
    const bytes = await fs.readFile(file);
    for (const { needle, forms } of patterns) {
      if (forms.some((f) => bytes.includes(f))) hits.push({ file: path.relative(dir, file), needle });
    }
  }
  return hits;
};
