/**
 * The command runner: hub → terminal requests on `commands`, answered on `commands/result`.
 *
 * Invariants:
 * - Each command id is answered once: ids are recorded in the outbox's store before running, so a QoS 1
 *   redelivery (or the broker's queued copy after a reconnect) is neither run nor answered again.
 * - An expired command is not run; it is answered `expired`.
 * - An unknown name, bad arguments or a malformed envelope with a readable id get an `error` result; a message
 *   without a readable id cannot be answered and is counted and logged.
 * - A handler never throws out of here: its failure is the command's error result.
 */
import { commandArgsSchemas, parsePayload, requestId, type Command, type CommandName } from '@kiosk-fleet/protocol';
import * as z from 'zod';

export interface CommandError {
  code: string;
  message: string;
}

export class CommandFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export type CommandOutcome =
  | { status: 'ok'; result: Record<string, unknown> }
  | { status: 'error'; error: CommandError }
  | { status: 'expired' };

export type Handlers = {
  [K in CommandName]: (args: z.output<(typeof commandArgsSchemas)[K]>, cmd: Command) => Promise<Record<string, unknown>>;
};

export interface RunnerDeps {
  handlers: Handlers;
  /** False when the id was already seen. */
  markSeen: (id: string) => boolean;
  respond: (id: string, outcome: CommandOutcome) => void;
  onMalformed: (reason: string) => void;
  now?: () => number;
}

export async function handleCommandMessage(raw: Buffer, deps: RunnerDeps): Promise<void> {
  const parsed = parsePayload('commands', raw);
  if (!parsed.ok) {
    const id = readableId(raw);
    deps.onMalformed(`${parsed.reason}: ${parsed.message}`);
    if (id && deps.markSeen(id)) {
      deps.respond(id, { status: 'error', error: { code: 'E_MALFORMED', message: `malformed command: ${parsed.reason}`.slice(0, 500) } });
    }
    return;
  }
  const cmd = parsed.value;
  if (!deps.markSeen(cmd.id)) return;
  const now = deps.now?.() ?? Date.now();
  if (Date.parse(cmd.expiresAt) <= now) {
    deps.respond(cmd.id, { status: 'expired' });
    return;
  }
  if (!Object.hasOwn(commandArgsSchemas, cmd.name)) {
    deps.respond(cmd.id, { status: 'error', error: { code: 'E_UNKNOWN_COMMAND', message: `unknown command ${JSON.stringify(cmd.name).slice(0, 80)}` } });
    return;
  }
  const name = cmd.name as CommandName;
  const args = commandArgsSchemas[name].safeParse(cmd.args);
  if (!args.success) {
    deps.respond(cmd.id, { status: 'error', error: { code: 'E_BAD_ARGS', message: z.prettifyError(args.error).slice(0, 500) } });
    return;
  }
  try {
    const handler = deps.handlers[name] as (a: unknown, c: Command) => Promise<Record<string, unknown>>;
    const result = await handler(args.data, cmd);
    deps.respond(cmd.id, { status: 'ok', result });
  } catch (err) {
    const code = err instanceof CommandFailure ? err.code : 'E_FAILED';
    deps.respond(cmd.id, { status: 'error', error: { code, message: ((err as Error).message || 'failed').slice(0, 500) } });
  }
}

function readableId(raw: Buffer): string | null {
  try {
    const j = JSON.parse(raw.toString('utf8')) as { id?: unknown };
    const r = requestId.safeParse(j?.id);
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}
