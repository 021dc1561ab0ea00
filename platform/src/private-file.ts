import fs from 'node:fs';

const PRIVATE = 0o600;

/**
 * Opens a file for writing that only its owner may read, whether it existed before or not: the
 * mode given to open applies only when the file is created, so it is set again on the open
 * descriptor before anything is written (an existing world-readable file would otherwise keep
 * its mode and receive the secret).
 */
export const openPrivateFile = (file: string): number => {
  const fd = fs.openSync(file, 'w', PRIVATE);
  try {
    fs.fchmodSync(fd, PRIVATE);
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  return fd;
};

/** Writes a secret (a key, an export of personal data) to a file readable only by its owner. */
export const writePrivateFile = (file: string, content: string | Buffer): void => {
  const fd = openPrivateFile(file);
  try {
    fs.writeSync(fd, typeof content === 'string' ? Buffer.from(content, 'utf8') : content);
  } finally {
    fs.closeSync(fd);
  }
};
