import { EXAMPLES, PERIPHERAL_IDS, SERVICE_IDS, type Telemetry } from '@kiosk-fleet/protocol';
import { describe, expect, it } from 'vitest';
import {
  appOf,
  encodeSample,
  hostOf,
  PERIPHERAL_CODES,
  peripheralsOf,
  SAMPLE_COLUMNS,
  SERVICE_CODES,
  servicesOf,
  statusesOf,
  type SampleRow,
} from './telemetry-codec.ts';

/** A sample through the encoder and back, as a row read from SQLite would be. */
function roundTrip(t: Telemetry, services: string[] | null) {
  const values = encodeSample(t, services);
  const row = Object.fromEntries(SAMPLE_COLUMNS.split(', ').map((c, i) => [c, values[i] ?? null])) as unknown as SampleRow;
  return {
    host: hostOf(row),
    peripherals: peripheralsOf(row.pstat, row.reads, row.failed_reads, row.pnote),
    statuses: statusesOf(row.pstat, row.pnote),
    app: appOf(row.app, row.tx_ok, row.tx_failed, row.app_version),
    services: servicesOf(row.services),
    row,
  };
}

const example = EXAMPLES.telemetry as unknown as Telemetry;

describe('telemetry codec', () => {
  it('keeps the stored code order: append only', () => {
    // Stored rows encode peripherals and services by position in these lists.
    expect(PERIPHERAL_CODES.slice(0, 11)).toEqual([
      'idCardReader', 'fingerprintScanner', 'camera', 'receiptPrinter', 'a4Printer', 'touchscreen',
      'documentScanner', 'paymentTerminal', 'qrScanner', 'travelDocReader', 'visionTester',
    ]);
    expect(SERVICE_CODES.slice(0, 10)).toEqual([
      'id-card-application', 'id-card-collection', 'exit-entry-endorsement', 'driving-licence-renewal', 'household-certificate',
      'residence-permit', 'traffic-fine-payment', 'document-submission', 'progress-inquiry', 'appointment-check-in',
    ]);
    // Every catalog id has a code (a new one is appended here when the protocol adds it).
    for (const p of PERIPHERAL_IDS) expect(PERIPHERAL_CODES).toContain(p);
    for (const s of SERVICE_IDS) expect(SERVICE_CODES).toContain(s);
    expect(SERVICE_CODES.length).toBeLessThanOrEqual(52);
  });

  it('gives back the documented example exactly, with small numbers in the row', () => {
    const r = roundTrip(example, ['id-card-application', 'progress-inquiry']);
    const { net: _net, ...host } = example.host;
    expect(r.host).toEqual(host);
    expect(r.peripherals).toEqual(example.peripherals);
    expect(r.app).toEqual(example.app);
    expect(r.services).toEqual(['id-card-application', 'progress-inquiry']);
    expect(r.statuses).toEqual({ idCardReader: 'ok', camera: 'ok', receiptPrinter: 'degraded' });
    // Whole numbers where SQLite stores them in 1-4 bytes; the printer's note as a short array.
    expect(r.row).toMatchObject({ cpu: 1250, mem_used: 1572864, temp: 480, reads: 14, failed_reads: 1, pnote: '[[3,"PAPER_LOW","paper low"]]' });
  });

  it('round-trips unknown peripherals, counters on any peripheral, no app, no sensor, all services', () => {
    const t: Telemetry = {
      ...example,
      host: { cpu: 99.99, memUsed: 12345, memTotal: 2 ** 40, diskUsed: 0, diskTotal: 1, tempC: null, uptime: 0.5 },
      peripherals: {
        visionTester: { status: 'unknown', reads: 2 },
        idCardReader: { status: 'absent', message: 'unplugged' },
        newGadget: { status: 'fault', code: 'E1', message: 'm', reads: 1, failedReads: 1 },
        otherGadget: { status: 'ok' },
      },
    };
    delete t.app;
    const r = roundTrip(t, [...SERVICE_CODES]);
    expect(r.host).toEqual(t.host);
    expect(r.peripherals).toEqual(t.peripherals);
    expect(r.statuses).toEqual({ visionTester: 'unknown', idCardReader: 'absent', newGadget: 'fault', otherGadget: 'ok' });
    expect(r.app).toBeNull();
    expect(r.services).toEqual([...SERVICE_CODES]);
    expect(roundTrip(t, null).services).toBeNull();
    expect(roundTrip({ ...t, peripherals: {} }, []).row).toMatchObject({ pstat: 0, pnote: null, services: 0 });
  });

  it('reads fractional host figures back within a rounding error', () => {
    const cpu = 100 / 3;
    const r = roundTrip({ ...example, host: { ...example.host, cpu, tempC: 47.123456 } }, []);
    expect(r.host.cpu).toBeCloseTo(cpu, 12);
    expect(r.host.tempC).toBeCloseTo(47.123456, 12);
  });
});
