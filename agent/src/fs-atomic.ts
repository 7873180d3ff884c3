import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';

/**
 * Write a file so that a reader (or the next boot after a power loss) sees either the old or the new content,
 * never a torn one: temp file in the same directory, fsync, rename, fsync the directory.
 */
export function writeFileAtomic(file: string, data: string, mode = 0o644): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  try {
    const dir = openSync(path.dirname(file), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } catch {
    // some filesystems refuse fsync on a directory; the rename is still atomic
  }
}
