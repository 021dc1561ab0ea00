import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openPrivateFile, writePrivateFile } from './private-file';

const modeOf = (file: string) => fs.statSync(file).mode & 0o777;

describe('private files', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'private-'));

  it('creates a file only its owner can read', () => {
    const file = path.join(dir, 'new.key');
    writePrivateFile(file, 'secret\n');
    expect(modeOf(file)).toBe(0o600);
    expect(fs.readFileSync(file, 'utf8')).toBe('secret\n');
  });

  it('takes the read rights away from a file that existed world-readable, before writing', () => {
    const file = path.join(dir, 'old.key');
    fs.writeFileSync(file, 'old\n', { mode: 0o644 });
    fs.chmodSync(file, 0o644);
    writePrivateFile(file, 'new secret\n');
    expect(modeOf(file)).toBe(0o600);
    expect(fs.readFileSync(file, 'utf8')).toBe('new secret\n');
    const again = path.join(dir, 'export.csv');
    fs.writeFileSync(again, 'x', { mode: 0o666 });
    fs.chmodSync(again, 0o666);
    fs.closeSync(openPrivateFile(again));
    expect(modeOf(again)).toBe(0o600);
  });
});
