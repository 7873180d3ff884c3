/**
 * What happens to a simulated terminal, second by second: the kiosk app's heartbeat, citizen sessions following
 * opening hours (the pushed config's, else a bureau's usual hours), card reads and transactions, receipts using up
 * paper, and — scaled by `chaos` — card-reader and other peripheral faults with recoveries, network drops, power
 * losses and app crashes. Rates are per terminal per hour at chaos 1; chaos 0 turns every random fault off (and
 * paper never runs out), for deterministic tests.
 */
import { isUsable, SERVICES, TERMINAL_TYPES, WEEKDAYS, type PeripheralId, type TerminalConfig } from '@kiosk-fleet/protocol';
import type { SimTerminal } from './terminal.ts';

export const RATES_PER_HOUR = {
  readerFault: 0.02,
  otherFault: 0.01,
  networkDrop: 0.03,
  powerLoss: 0.005,
  appCrash: 0.005,
  /** Citizens per terminal per opening hour. */
  sessions: 8,
};

const READER_CODES = [
  ['E_NO_RESPONSE', 'reader did not answer within 3000 ms'],
  ['E_RF_MODULE', 'RF module self-check failed'],
  ['E_USB_RESET', 'reader reset on the USB bus'],
] as const;

/** Opening hours when no config says otherwise: weekdays 08:30-18:00, weekends 09:00-17:00 (Asia/Shanghai). */
const DEFAULT_HOURS: NonNullable<TerminalConfig['openingHours']> = {
  mon: [{ from: '08:30', to: '18:00' }],
  tue: [{ from: '08:30', to: '18:00' }],
  wed: [{ from: '08:30', to: '18:00' }],
  thu: [{ from: '08:30', to: '18:00' }],
  fri: [{ from: '08:30', to: '18:00' }],
  sat: [{ from: '09:00', to: '17:00' }],
  sun: [{ from: '09:00', to: '17:00' }],
};

/** Asia/Shanghai has had no daylight saving since 1991: UTC+8 throughout. */
const SHANGHAI_OFFSET_MS = 8 * 3600_000;

export function isOpen(hours: TerminalConfig['openingHours'] | undefined, now: number): boolean {
  const local = new Date(now + SHANGHAI_OFFSET_MS);
  const day = WEEKDAYS[local.getUTCDay()]!;
  const minutes = local.getUTCHours() * 60 + local.getUTCMinutes();
  // with pushed hours, a day they leave out is closed
  const spans = (hours ?? DEFAULT_HOURS)[day] ?? [];
  return spans.some(({ from, to }) => {
    const f = toMinutes(from);
    const t = toMinutes(to);
    return f <= t ? minutes >= f && minutes < t : minutes >= f || minutes < t;
  });
}

function toMinutes(hhmm: string): number {
  const [h, m] = hhmm.split(':').map(Number);
  return (h ?? 0) * 60 + (m ?? 0);
}

export interface BehaviourContext {
  now: number;
  /** Seconds since the last tick. */
  dt: number;
  chaos: number;
  random: () => number;
  /** Citizens come at any hour (demos at night); otherwise opening hours apply. */
  alwaysOpen?: boolean;
}

const lastHeartbeat = new WeakMap<SimTerminal, number>();

export function tick(t: SimTerminal, ctx: BehaviourContext): void {
  if (!t.powered) return;
  const { now, random } = ctx;
  const chance = (perHour: number, scaled = true): boolean => random() < (perHour * (scaled ? ctx.chaos : 1) * ctx.dt) / 3600;
  const between = (lo: number, hi: number): number => lo + random() * (hi - lo);
  const agent = t.agent;

  if (t.appUp && now - (lastHeartbeat.get(t) ?? 0) >= 10_000) {
    agent.appHeartbeat(t.appVersion);
    lastHeartbeat.set(t, now);
  }

  for (const [id, at] of t.recoverAt) {
    if (now < at) continue;
    t.recoverAt.delete(id);
    if (id === 'receiptPrinter') t.paperLeft = Math.floor(between(300, 1000));
    void t.setPeripheral(id, { status: 'ok' });
  }

  if (ctx.chaos > 0) {
    if (chance(RATES_PER_HOUR.readerFault) && t.peripheral('idCardReader').status === 'ok') {
      const [code, message] = READER_CODES[Math.floor(random() * READER_CODES.length)]!;
      void t.setPeripheral('idCardReader', { status: 'fault', code, message });
      t.recoverAt.set('idCardReader', now + between(5, 90) * 60_000);
    }
    if (chance(RATES_PER_HOUR.otherFault)) {
      const others = t.spec.peripherals.filter((p) => p !== 'idCardReader' && p !== 'receiptPrinter');
      const p = others[Math.floor(random() * others.length)];
      if (p && t.peripheral(p).status === 'ok') {
        void t.setPeripheral(p, { status: 'fault', code: 'E_DEVICE', message: 'device self-check failed' });
        t.recoverAt.set(p, now + between(10, 120) * 60_000);
      }
    }
    if (chance(RATES_PER_HOUR.networkDrop)) t.networkDrop(between(5, 120) * 1000);
    if (chance(RATES_PER_HOUR.powerLoss)) {
      t.powerLoss(between(30, 300) * 1000);
      return;
    }
    if (chance(RATES_PER_HOUR.appCrash)) t.appCrash(between(15, 60) * 1000);
  }

  // citizens
  if (t.sessionUntil && now >= t.sessionUntil) {
    t.sessionUntil = 0;
    agent.endSession();
  }
  if (!t.sessionUntil && t.appUp && (ctx.alwaysOpen || isOpen(t.config?.openingHours, now)) && chance(RATES_PER_HOUR.sessions, false)) {
    t.sessionUntil = now + between(60, 240) * 1000;
    agent.beginSession();
    citizen(t, ctx);
  }
}

/** One citizen's visit: card reads, a service, maybe a receipt. */
function citizen(t: SimTerminal, ctx: BehaviourContext): void {
  const { random } = ctx;
  const agent = t.agent;
  const readerOk = isUsable(t.peripheral('idCardReader').status);
  let readOk = false;
  const tries = random() < 0.2 ? 2 : 1;
  for (let i = 0; i < tries && !readOk; i++) {
    readOk = readerOk && random() > 0.04;
    agent.recordRead('idCardReader', readOk);
  }
  const services = TERMINAL_TYPES[t.spec.type].services;
  const service = services[Math.floor(random() * services.length)]!;
  const needs: readonly PeripheralId[] = SERVICES[service].needs;
  const blocked = needs.find((p) => t.drivers.has(p) && !isUsable(t.peripheral(p).status));
  if (!readOk || blocked) {
    agent.recordTransaction({ service, ok: false, code: !readOk ? 'E_CARD_READ' : `E_${blocked!.toUpperCase()}` });
    return;
  }
  const ok = random() > 0.02;
  agent.recordTransaction({ service, ok, ...(ok ? {} : { code: 'E_BACKEND' }) });
  if (ok && ctx.chaos > 0 && needs.includes('receiptPrinter') && t.drivers.has('receiptPrinter')) {
    t.paperLeft -= 1;
    if (t.paperLeft === 40) void t.setPeripheral('receiptPrinter', { status: 'degraded', code: 'PAPER_LOW', message: 'receipt paper low' });
    if (t.paperLeft <= 0 && t.peripheral('receiptPrinter').code !== 'PAPER_OUT') {
      void t.setPeripheral('receiptPrinter', { status: 'fault', code: 'PAPER_OUT', message: 'receipt paper out' });
      t.recoverAt.set('receiptPrinter', ctx.now + (20 + random() * 100) * 60_000);
    }
  }
}
