/**
 * The terminal-type and peripheral catalog, and which peripherals each citizen service needs.
 *
 * "Can this terminal issue ID cards right now?" is `availableServices(type, peripheralStatuses, appUp)`: a service
 * is available when the terminal type offers it, the kiosk app is up, and every peripheral it needs is usable
 * (`ok` or `degraded`). `fault`, `absent` and `unknown` make a peripheral unusable: a technician would rather be
 * told a service is down when it is not sure than the reverse.
 */
export interface I18nName {
  readonly zh: string;
  readonly en: string;
}

export const PERIPHERAL_STATUSES = ['ok', 'degraded', 'fault', 'absent', 'unknown'] as const;
export type PeripheralStatus = (typeof PERIPHERAL_STATUSES)[number];

export function isUsable(status: PeripheralStatus | undefined): boolean {
  return status === 'ok' || status === 'degraded';
}

export const PERIPHERALS = {
  idCardReader: { zh: '身份证读卡器', en: 'ID card reader' },
  fingerprintScanner: { zh: '指纹仪', en: 'Fingerprint scanner' },
  camera: { zh: '摄像头', en: 'Camera' },
  receiptPrinter: { zh: '凭条打印机', en: 'Receipt printer' },
  a4Printer: { zh: 'A4 打印机', en: 'A4 printer' },
  touchscreen: { zh: '触摸屏', en: 'Touchscreen' },
  documentScanner: { zh: '文件扫描仪', en: 'Document scanner' },
  paymentTerminal: { zh: '支付终端', en: 'Payment terminal' },
  qrScanner: { zh: '二维码扫描器', en: 'QR code scanner' },
  travelDocReader: { zh: '出入境证件阅读器', en: 'Travel document reader' },
  visionTester: { zh: '视力检测仪', en: 'Vision tester' },
} as const satisfies Record<string, I18nName>;

export type PeripheralId = keyof typeof PERIPHERALS;
export const PERIPHERAL_IDS = Object.keys(PERIPHERALS) as PeripheralId[];

export interface ServiceSpec {
  readonly name: I18nName;
  /** Every one of these must be usable. */
  readonly needs: readonly PeripheralId[];
}

export const SERVICES = {
  'id-card-application': {
    name: { zh: '居民身份证申领', en: 'ID card application' },
    needs: ['idCardReader', 'fingerprintScanner', 'camera', 'touchscreen'],
  },
  'id-card-collection': {
    name: { zh: '身份证领取', en: 'ID card collection' },
    needs: ['idCardReader', 'fingerprintScanner', 'receiptPrinter', 'touchscreen'],
  },
  'exit-entry-endorsement': {
    name: { zh: '出入境签注', en: 'Exit-entry endorsement' },
    needs: ['idCardReader', 'travelDocReader', 'camera', 'paymentTerminal', 'receiptPrinter', 'touchscreen'],
  },
  'driving-licence-renewal': {
    name: { zh: '驾驶证换证', en: 'Driving licence renewal' },
    needs: ['idCardReader', 'camera', 'visionTester', 'receiptPrinter', 'touchscreen'],
  },
  'household-certificate': {
    name: { zh: '户籍证明开具', en: 'Household registration certificate' },
    needs: ['idCardReader', 'a4Printer', 'touchscreen'],
  },
  'residence-permit': {
    name: { zh: '居住证办理', en: 'Residence permit' },
    needs: ['idCardReader', 'camera', 'a4Printer', 'touchscreen'],
  },
  'traffic-fine-payment': {
    name: { zh: '交通违法缴款', en: 'Traffic fine payment' },
    needs: ['idCardReader', 'paymentTerminal', 'touchscreen'],
  },
  'document-submission': {
    name: { zh: '材料扫描提交', en: 'Document submission' },
    needs: ['idCardReader', 'documentScanner', 'touchscreen'],
  },
  'progress-inquiry': {
    name: { zh: '办证进度查询', en: 'Application progress inquiry' },
    needs: ['idCardReader', 'touchscreen'],
  },
  'appointment-check-in': {
    name: { zh: '预约取号', en: 'Appointment check-in' },
    needs: ['qrScanner', 'receiptPrinter', 'touchscreen'],
  },
} as const satisfies Record<string, ServiceSpec>;

export type ServiceId = keyof typeof SERVICES;
export const SERVICE_IDS = Object.keys(SERVICES) as ServiceId[];

export interface TerminalTypeSpec {
  readonly name: I18nName;
  readonly peripherals: readonly PeripheralId[];
  readonly services: readonly ServiceId[];
}

/** The six types of the reference fleet (ids and peripherals as in fixtures/guangzhou-fleet.json). */
export const TERMINAL_TYPES = {
  'id-card': {
    name: { zh: '居民身份证自助办证机', en: 'ID card self-service machine' },
    peripherals: ['idCardReader', 'fingerprintScanner', 'camera', 'receiptPrinter', 'touchscreen'],
    services: ['id-card-application', 'id-card-collection', 'progress-inquiry'],
  },
  'police-multi': {
    name: { zh: '警务自助一体机', en: 'Multi-service police kiosk' },
    peripherals: ['idCardReader', 'documentScanner', 'a4Printer', 'paymentTerminal', 'touchscreen'],
    services: ['household-certificate', 'traffic-fine-payment', 'document-submission', 'progress-inquiry'],
  },
  quanjingtong: {
    name: { zh: '全警通', en: 'All-police-services terminal' },
    peripherals: ['idCardReader', 'camera', 'a4Printer', 'paymentTerminal', 'touchscreen'],
    services: ['household-certificate', 'residence-permit', 'traffic-fine-payment', 'progress-inquiry'],
  },
  weijingwu: {
    name: { zh: '微警务自助终端', en: 'Micro-policing terminal' },
    peripherals: ['idCardReader', 'qrScanner', 'receiptPrinter', 'touchscreen'],
    services: ['appointment-check-in', 'progress-inquiry'],
  },
  endorsement: {
    name: { zh: '签注易', en: 'Exit-entry endorsement kiosk' },
    peripherals: ['idCardReader', 'travelDocReader', 'camera', 'receiptPrinter', 'paymentTerminal', 'touchscreen'],
    services: ['exit-entry-endorsement', 'progress-inquiry'],
  },
  'driver-photo': {
    name: { zh: '驾驶证换证体检拍照一体机', en: 'Driving-licence renewal photo & exam kiosk' },
    peripherals: ['idCardReader', 'camera', 'visionTester', 'receiptPrinter', 'touchscreen'],
    services: ['driving-licence-renewal', 'progress-inquiry'],
  },
} as const satisfies Record<string, TerminalTypeSpec>;

/**
 * The probe names a terminal's catalog provides for each peripheral (agent/README.md, "Probe catalog"): what a config
 * form offers for `{"driver":"command","probe":…}`. A terminal's own catalog may add vendor names; the agent refuses
 * a name its catalog lacks.
 */
export const PERIPHERAL_PROBES = {
  idCardReader: ['idcard-reader'],
  fingerprintScanner: ['fingerprint-scanner'],
  camera: ['camera'],
  receiptPrinter: ['receipt-printer'],
  a4Printer: ['a4-printer'],
  touchscreen: ['touchscreen'],
  documentScanner: ['document-scanner'],
  paymentTerminal: ['payment-terminal'],
  qrScanner: ['qr-scanner'],
  travelDocReader: ['travel-doc-reader'],
  visionTester: ['vision-tester'],
} as const satisfies Record<PeripheralId, readonly string[]>;

export type TerminalType = keyof typeof TERMINAL_TYPES;

/** Per peripheral of the type, the probe names its terminals' catalogs provide. */
export function probesOfType(type: TerminalType): Partial<Record<PeripheralId, readonly string[]>> {
  return Object.fromEntries(TERMINAL_TYPES[type].peripherals.map((p) => [p, PERIPHERAL_PROBES[p]]));
}
export const TERMINAL_TYPE_IDS = Object.keys(TERMINAL_TYPES) as TerminalType[];

export function isTerminalType(s: string): s is TerminalType {
  return Object.hasOwn(TERMINAL_TYPES, s);
}

/**
 * The citizen services a terminal can offer now. `peripherals` maps peripheral id to its latest status (a missing
 * entry counts as `unknown`); `appUp` is whether the kiosk application's heartbeat is alive.
 */
export function availableServices(
  type: TerminalType,
  peripherals: Partial<Record<string, PeripheralStatus>>,
  appUp = true,
): ServiceId[] {
  if (!appUp) return [];
  const spec: TerminalTypeSpec = TERMINAL_TYPES[type];
  return spec.services.filter((service) => SERVICES[service].needs.every((p) => isUsable(peripherals[p])));
}

/** The services a terminal type offers when everything works. */
export function servicesOfType(type: TerminalType): readonly ServiceId[] {
  return TERMINAL_TYPES[type].services;
}
