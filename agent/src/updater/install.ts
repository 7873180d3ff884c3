/**
 * Unpack a verified artifact into releases/<version>/ so that the directory is either complete or absent:
 * extract under releases/.tmp-*, fsync every file, rename into place, fsync the parent.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as tar from 'tar';
import { fsyncDir, type Layout } from './layout.ts';

function fsyncTree(dir: string): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) fsyncTree(p);
    else if (e.isFile()) {
      const fd = fs.openSync(p, 'r');
      try {
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    }
  }
  fsyncDir(dir);
}

export async function installRelease(layout: Layout, version: string, artifact: string): Promise<void> {
  if (!/^[0-9A-Za-z.+-]{1,64}$/.test(version) || version.startsWith('.')) throw new Error(`unsafe version string ${version}`);
  const tmp = path.join(layout.releasesDir, `.tmp-${version}-${randomBytes(4).toString('hex')}`);
  fs.mkdirSync(tmp);
  try {
    // node-tar refuses absolute paths and `..` (preservePaths false) and does not restore owners: a signed bundle
    // still cannot write outside its own directory.
    await tar.x({ file: artifact, cwd: tmp, strict: true, preservePaths: false, preserveOwner: false });
    fsyncTree(tmp);
    const dest = layout.releaseDir(version);
    if (layout.currentVersion() === version) throw new Error(`refusing to replace the running version ${version}`);
    // A same-named directory is an earlier install of this version that is not running: replace it.
    fs.rmSync(dest, { recursive: true, force: true });
    fs.renameSync(tmp, dest);
    fsyncDir(layout.releasesDir);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}
