/**
 * The command-line conventions both programs (`kiosk-fleet`, `kiosk-fleet-agent`) share: exit codes, `--help`/`-h`
 * on every command, and usage text generated from the same option table that node:util's parseArgs reads, so the
 * help can never list a flag the parser refuses (or miss one it takes). Node-only (node:util); the dashboard never
 * imports this entry.
 */
import { parseArgs } from 'node:util';

/**
 * Exit codes, the same in both programs. 2 = a configuration error (a wrong env value or config file): systemd units
 * say `RestartPreventExitStatus=2`, since restarting cannot fix it. 64 = a usage error (sysexits.h EX_USAGE: an
 * unknown command or option, a missing argument), kept apart from 2 so that a script can tell the two apart.
 */
export const EXIT = { ok: 0, failure: 1, config: 2, usage: 64 } as const;

export interface CliOption {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** The value's placeholder in the help (`--out <dir>`); strings only. */
  value?: string;
  help: string;
}

export interface CommandSpec<O extends Record<string, CliOption> = Record<string, CliOption>> {
  /** `release pack`, `serve`, ...: what follows the program's name. */
  name: string;
  /** One line: what the command does. */
  summary: string;
  /** The synopsis after the name, e.g. `<file>` or `--dir <bundle> --version <semver> ...`; default: `[options]`. */
  synopsis?: string;
  options: O;
  /** Free text after the options (environment, examples). */
  notes?: string;
}

/** A command line that cannot be right: the caller prints the message and the command's help, and exits 64. */
export class UsageError extends Error {
  override name = 'UsageError';
}

type OptionValue<T extends CliOption> = T['type'] extends 'boolean' ? (T['multiple'] extends true ? boolean[] : boolean) : T['multiple'] extends true ? string[] : string;
export type OptionValues<O extends Record<string, CliOption>> = { [K in keyof O]?: OptionValue<O[K]> };

export type ParsedCommand<O extends Record<string, CliOption>> = { help: true } | { help: false; values: OptionValues<O>; positionals: string[] };

const HELP: CliOption = { type: 'boolean', short: 'h', help: 'print this help and exit' };

/**
 * Parses `argv` (the words after the command's name) against the spec. `--help`/`-h` anywhere before `--` wins over
 * everything else (a missing required flag or an unknown one included): asking for help never does the work.
 * Throws UsageError for an unknown option, a missing value or, unless `maxPositionals` allows them, positionals.
 */
/** `--help` or `-h` before any `--`. */
export function wantsHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  const head = end === -1 ? argv : argv.slice(0, end);
  return head.includes('--help') || head.includes('-h');
}

export function parseCommand<const O extends Record<string, CliOption>>(spec: CommandSpec<O>, argv: readonly string[], maxPositionals = 0): ParsedCommand<O> {
  if (wantsHelp(argv)) return { help: true };
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [name, o] of Object.entries(spec.options)) options[name] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) };
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: true });
  } catch (err) {
    // node's messages name the option ("Unknown option '--x'"), and then suggest `--` for positionals: cut that
    throw new UsageError((err as Error).message.split('. To specify a positional')[0]!);
  }
  if (parsed.positionals.length > maxPositionals) throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[maxPositionals])}`);
  return { help: false, values: parsed.values as OptionValues<O>, positionals: parsed.positionals };
}

/** The help of one command, from its spec (`--help`/`-h` included). */
export function formatHelp(program: string, spec: CommandSpec): string {
  const rows = Object.entries({ ...spec.options, help: HELP }).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` <${o.value ?? 'value'}>` : ''}`;
    return [flag, o.help + (o.multiple ? ' (repeatable)' : '')] as const;
  });
  const width = Math.min(34, Math.max(...rows.map(([f]) => f.length)) + 2);
  const lines = [`usage: ${program} ${spec.name} ${spec.synopsis ?? '[options]'}`, '', spec.summary, '', 'options:'];
  for (const [flag, help] of rows) lines.push(flag.length + 2 > width ? `  ${flag}\n  ${' '.repeat(width)}${help}` : `  ${flag.padEnd(width)}${help}`);
  if (spec.notes) lines.push('', spec.notes.trimEnd());
  return `${lines.join('\n')}\n`;
}

/** The program's own help: its commands, one line each, and how to get a command's help. */
export function formatProgramHelp(program: string, summary: string, commands: readonly Pick<CommandSpec, 'name' | 'summary'>[], notes?: string): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  const lines = [`usage: ${program} <command> [options]`, '', summary, '', 'commands:'];
  for (const c of commands) lines.push(`  ${c.name.padEnd(width)}${c.summary}`);
  lines.push('', `${program} <command> --help    a command's options`);
  // a group of subcommands (`kiosk-fleet release`) has no version of its own
  if (!program.includes(' ')) lines.push(`${program} --version${' '.repeat(9)}the version`);
  lines.push('', `exit codes: ${EXIT.ok} done, ${EXIT.failure} failed, ${EXIT.config} configuration error, ${EXIT.usage} usage error`);
  if (notes) lines.push('', notes.trimEnd());
  return `${lines.join('\n')}\n`;
}

/**
 * Progress of long work on stderr, for a person watching: one line rewritten in place on a terminal, and on a pipe
 * or a journal a line at most every `everyMs` (and at the end), so a log is not flooded.
 */
export function progressReporter(label: string, out: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean } = process.stderr, everyMs = 2000): { update(done: number, total?: number, unit?: string): void; done(msg: string): void } {
  let last = 0;
  let drawn = false;
  const tty = Boolean((out as { isTTY?: boolean }).isTTY);
  const fmt = (done: number, total: number | undefined, unit: string) =>
    total ? `${label}: ${Math.floor((done / total) * 100)}% (${done}/${total} ${unit})` : `${label}: ${done} ${unit}`;
  return {
    update(done, total, unit = '') {
      const now = Date.now();
      if (now - last < (tty ? 100 : everyMs)) return;
      last = now;
      if (tty) {
        out.write(`\r${fmt(done, total, unit)}\x1b[K`);
        drawn = true;
      } else out.write(`${fmt(done, total, unit)}\n`);
    },
    done(msg) {
      out.write(`${drawn ? '\r\x1b[K' : ''}${label}: ${msg}\n`);
    },
  };
}
