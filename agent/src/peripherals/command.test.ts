import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../test-support/agent.ts';
import { CommandDriver } from './command.ts';

// real small programs, as a vendor's diagnostic would be: shell scripts with exit codes and stdout
const t = tempDir('kf-diag-');
afterAll(() => t.cleanup());
function program(name: string, body: string): string {
  const file = path.join(t.dir, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

describe('command driver', () => {
  it('a diagnostic that succeeds reports its status and counts', async () => {
    const ok = program('ok.sh', `echo 'warming up'\necho '{"status":"ok","reads":12,"failedReads":1}'`);
    expect(await new CommandDriver([ok]).probe()).toEqual({ status: 'ok', reads: 12, failedReads: 1 });
    const degraded = program('deg.sh', `echo '{"status":"degraded","code":"PAPER_LOW","message":"paper low"}'`);
    expect(await new CommandDriver([degraded]).probe()).toEqual({ status: 'degraded', code: 'PAPER_LOW', message: 'paper low' });
  });

  it('a diagnostic that fails is a fault with its code, or the exit code', async () => {
    const withJson = program('fail.sh', `echo '{"code":"E_NO_RESPONSE","message":"reader did not answer"}'\nexit 3`);
    expect(await new CommandDriver([withJson]).probe()).toEqual({ status: 'fault', code: 'E_NO_RESPONSE', message: 'reader did not answer' });
    const bare = program('bare.sh', `echo 'device lost' >&2\nexit 7`);
    expect(await new CommandDriver([bare]).probe()).toEqual({ status: 'fault', code: 'EXIT_7', message: 'device lost' });
    const absent = program('absent.sh', `echo '{"status":"absent"}'\nexit 1`);
    expect((await new CommandDriver([absent]).probe()).status).toBe('absent');
  });

  it('garbage on stdout is unknown on success and a fault on failure', async () => {
    const garbage = program('garbage.sh', `printf '\\x00\\x01 %%%% not json {{{'`);
    expect(await new CommandDriver([garbage]).probe()).toMatchObject({ status: 'unknown', code: 'E_BAD_OUTPUT' });
    const wrongShape = program('shape.sh', `echo '{"status":"splendid"}'\nexit 2`);
    expect(await new CommandDriver([wrongShape]).probe()).toMatchObject({ status: 'fault', code: 'EXIT_2' });
  });

  it('a hung diagnostic is killed with its children and reported as a fault', async () => {
    // the script's child (sleep) holds stdout open: only killing the process group ends it
    const hang = program('hang.sh', `sleep 600 &\nsleep 600`);
    const sample = await new CommandDriver([hang], 300).probe();
    expect(sample).toMatchObject({ status: 'fault', code: 'E_TIMEOUT' });
  });

  it('a crashing diagnostic and a missing one are faults', async () => {
    const crash = program('crash.sh', `kill -SEGV $$`);
    expect(await new CommandDriver([crash]).probe()).toMatchObject({ status: 'fault', code: 'E_CRASH' });
    expect(await new CommandDriver([path.join(t.dir, 'nope')]).probe()).toMatchObject({ status: 'fault', code: 'E_SPAWN' });
  });
});
