/**
 * The on-disk layout of one installable thing (the kiosk app, or the agent itself) under its root:
 *
 *   <root>/releases/<version>/   an installed release, complete (made under a temp name, then renamed)
 *   <root>/releases/.tmp-*       an install in progress; never pointed at, removed on start
 *   <root>/current -> releases/<version>   the running version: a relative symlink, replaced by rename only
 *   <root>/downloads/<sha256>.part          an artifact being downloaded (appended; resumed with Range)
 *
 * Only node builtins here: the boot guard (boot-guard.ts) uses this before any agent code has to work.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // some filesystems refuse fsync on a directory; renames are still atomic
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

export class Layout {
  constructor(readonly root: string) {}

  get releasesDir(): string {
    return path.join(this.root, 'releases');
  }
  get downloadsDir(): string {
    return path.join(this.root, 'downloads');
  }
  get currentLink(): string {
    return path.join(this.root, 'current');
  }
  releaseDir(version: string): string {
    return path.join(this.releasesDir, version);
  }
  partFile(sha256: string): string {
    return path.join(this.downloadsDir, `${sha256}.part`);
  }

  ensure(): void {
    fs.mkdirSync(this.releasesDir, { recursive: true });
    fs.mkdirSync(this.downloadsDir, { recursive: true });
  }

  /** The version `current` points at, or null when nothing is installed. */
  currentVersion(): string | null {
    try {
      return path.basename(fs.readlinkSync(this.currentLink));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  isInstalled(version: string): boolean {
    return fs.statSync(this.releaseDir(version), { throwIfNoEntry: false })?.isDirectory() ?? false;
  }

  /**
   * Point `current` at releases/<version>, atomically: a new link under a temp name renamed over the old one, so
   * a reader or a power cut sees the old target or the new, never a missing link. Idempotent.
   */
  switchTo(version: string): void {
    if (!this.isInstalled(version)) throw new Error(`cannot switch to ${version}: not installed`);
    if (this.currentVersion() === version) return;
    const tmp = path.join(this.root, `.current-${randomBytes(4).toString('hex')}`);
    fs.symlinkSync(path.join('releases', version), tmp);
    fs.renameSync(tmp, this.currentLink);
    fsyncDir(this.root);
  }

  /** Remove leftovers a kill can leave: half-made installs and temp links. Never touches an installed release. */
  sweep(): void {
    for (const name of fs.readdirSync(this.releasesDir)) {
      if (name.startsWith('.tmp-')) fs.rmSync(path.join(this.releasesDir, name), { recursive: true, force: true });
    }
    for (const name of fs.readdirSync(this.root)) {
      if (name.startsWith('.current-')) fs.rmSync(path.join(this.root, name), { force: true });
    }
  }

  /** Keep only the versions named (the current one and the rollback target); drop other releases. */
  prune(keep: readonly (string | null)[]): void {
    for (const name of fs.readdirSync(this.releasesDir)) {
      if (!keep.includes(name)) fs.rmSync(path.join(this.releasesDir, name), { recursive: true, force: true });
    }
  }
}
