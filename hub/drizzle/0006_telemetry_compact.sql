CREATE TABLE `telemetry_samples` (
	`epoch_id` integer NOT NULL,
	`ts` integer NOT NULL,
	`seq` integer NOT NULL,
	`recv_delay` integer NOT NULL,
	`skewed` integer DEFAULT 0 NOT NULL,
	`cpu` real NOT NULL,
	`mem_used` real NOT NULL,
	`mem_total` real NOT NULL,
	`disk_used` real NOT NULL,
	`disk_total` real NOT NULL,
	`temp` real,
	`uptime` real NOT NULL,
	`pstat` integer NOT NULL,
	`reads` integer,
	`failed_reads` integer,
	`pnote` text,
	`app` integer,
	`tx_ok` integer,
	`tx_failed` integer,
	`app_version` text,
	`services` integer,
	PRIMARY KEY(`epoch_id`, `ts`, `seq`)
) WITHOUT ROWID;
--> statement-breakpoint
CREATE TABLE `telemetry_epochs` (
	`id` integer PRIMARY KEY NOT NULL,
	`terminal_id` text NOT NULL,
	`epoch` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `telemetry_epochs_key` ON `telemetry_epochs` (`terminal_id`,`epoch`);--> statement-breakpoint
-- Data conversion (hand-written): the old rows, JSON text and text ids, into the compact layout that
-- hub/src/store/telemetry-codec.ts writes and reads (same encoding; code lists as PERIPHERAL_CODES / SERVICE_CODES).
-- Service ids the catalog does not know cannot be kept in the bitmask and are dropped.
INSERT INTO `telemetry_epochs` (`terminal_id`, `epoch`) SELECT DISTINCT `terminal_id`, `epoch` FROM `telemetry`;--> statement-breakpoint
-- Each distinct peripherals and services text is converted once (samples mostly repeat the previous one's): measured
-- on 300,000 rows of the protocol's example, 69 µs a row when every row was converted on its own.
CREATE TABLE `__telemetry_peripherals` AS SELECT d.k AS k,
  (SELECT coalesce(sum(CASE json_extract(p.value, '$.status') WHEN 'ok' THEN 1 WHEN 'degraded' THEN 2 WHEN 'fault' THEN 3 WHEN 'absent' THEN 4 ELSE 5 END * CASE p.key WHEN 'idCardReader' THEN 1 WHEN 'fingerprintScanner' THEN 8 WHEN 'camera' THEN 64 WHEN 'receiptPrinter' THEN 512 WHEN 'a4Printer' THEN 4096 WHEN 'touchscreen' THEN 32768 WHEN 'documentScanner' THEN 262144 WHEN 'paymentTerminal' THEN 2097152 WHEN 'qrScanner' THEN 16777216 WHEN 'travelDocReader' THEN 134217728 WHEN 'visionTester' THEN 1073741824 ELSE 0 END), 0) FROM json_each(d.k) p) AS pstat,
  json_extract(d.k, '$.idCardReader.reads') AS reads,
  json_extract(d.k, '$.idCardReader.failedReads') AS failed_reads,
  (SELECT CASE WHEN count(*) = 0 THEN NULL ELSE json_group_array(json(n)) END FROM (
     SELECT CASE
       WHEN p.key = 'idCardReader' THEN json_array(0, json_extract(p.value, '$.code'), json_extract(p.value, '$.message'))
       WHEN p.key IN ('idCardReader', 'fingerprintScanner', 'camera', 'receiptPrinter', 'a4Printer', 'touchscreen', 'documentScanner', 'paymentTerminal', 'qrScanner', 'travelDocReader', 'visionTester') THEN json_array(CASE p.key WHEN 'idCardReader' THEN 0 WHEN 'fingerprintScanner' THEN 1 WHEN 'camera' THEN 2 WHEN 'receiptPrinter' THEN 3 WHEN 'a4Printer' THEN 4 WHEN 'touchscreen' THEN 5 WHEN 'documentScanner' THEN 6 WHEN 'paymentTerminal' THEN 7 WHEN 'qrScanner' THEN 8 WHEN 'travelDocReader' THEN 9 WHEN 'visionTester' THEN 10 END, json_extract(p.value, '$.code'), json_extract(p.value, '$.message'), json_extract(p.value, '$.reads'), json_extract(p.value, '$.failedReads'))
       ELSE json_array(p.key, json_extract(p.value, '$.code'), json_extract(p.value, '$.message'), json_extract(p.value, '$.reads'), json_extract(p.value, '$.failedReads'), json_extract(p.value, '$.status')) END AS n
     FROM json_each(d.k) p
     WHERE NOT p.key IN ('idCardReader', 'fingerprintScanner', 'camera', 'receiptPrinter', 'a4Printer', 'touchscreen', 'documentScanner', 'paymentTerminal', 'qrScanner', 'travelDocReader', 'visionTester')
       OR json_extract(p.value, '$.code') IS NOT NULL OR json_extract(p.value, '$.message') IS NOT NULL
       OR (p.key <> 'idCardReader' AND (json_extract(p.value, '$.reads') IS NOT NULL OR json_extract(p.value, '$.failedReads') IS NOT NULL)))) AS pnote
FROM (SELECT DISTINCT peripherals AS k FROM `telemetry`) d;--> statement-breakpoint
CREATE UNIQUE INDEX `__telemetry_peripherals_k` ON `__telemetry_peripherals` (k);--> statement-breakpoint
CREATE TABLE `__telemetry_services` AS SELECT d.k AS k, (SELECT coalesce(sum(DISTINCT CASE s.value WHEN 'id-card-application' THEN 1 WHEN 'id-card-collection' THEN 2 WHEN 'exit-entry-endorsement' THEN 4 WHEN 'driving-licence-renewal' THEN 8 WHEN 'household-certificate' THEN 16 WHEN 'residence-permit' THEN 32 WHEN 'traffic-fine-payment' THEN 64 WHEN 'document-submission' THEN 128 WHEN 'progress-inquiry' THEN 256 WHEN 'appointment-check-in' THEN 512 END), 0) FROM json_each(d.k) s) AS mask
FROM (SELECT DISTINCT services AS k FROM `telemetry` WHERE services IS NOT NULL) d;--> statement-breakpoint
CREATE UNIQUE INDEX `__telemetry_services_k` ON `__telemetry_services` (k);--> statement-breakpoint
INSERT INTO `telemetry_samples` ("epoch_id", "ts", "seq", "recv_delay", "skewed", "cpu", "mem_used", "mem_total", "disk_used", "disk_total", "temp", "uptime", "pstat", "reads", "failed_reads", "pnote", "app", "tx_ok", "tx_failed", "app_version", "services")
SELECT e.id, t.ts, t.seq, t.received_at - t.ts, t.skewed,
  CASE WHEN abs(t.cpu * 100 - round(t.cpu * 100)) <= 1e-9 * max(1, abs(t.cpu * 100)) THEN round(t.cpu * 100) ELSE t.cpu * 100 END,
  t.mem_used / 1024.0, t.mem_total / 1024.0, t.disk_used / 1024.0, t.disk_total / 1024.0,
  CASE WHEN t.temp_c IS NULL THEN NULL ELSE CASE WHEN abs(t.temp_c * 10 - round(t.temp_c * 10)) <= 1e-9 * max(1, abs(t.temp_c * 10)) THEN round(t.temp_c * 10) ELSE t.temp_c * 10 END END,
  t.uptime, p.pstat, p.reads, p.failed_reads, p.pnote,
  CASE WHEN t.app IS NULL THEN NULL ELSE coalesce(json_extract(t.app, '$.up'), 0) + 2 * coalesce(json_extract(t.app, '$.sessionActive'), 0) END,
  json_extract(t.app, '$.transactionsOk'),
  json_extract(t.app, '$.transactionsFailed'),
  json_extract(t.app, '$.version'),
  s.mask
FROM `telemetry` t JOIN `telemetry_epochs` e ON e.terminal_id = t.terminal_id AND e.epoch = t.epoch
  JOIN `__telemetry_peripherals` p ON p.k = t.peripherals LEFT JOIN `__telemetry_services` s ON s.k = t.services;--> statement-breakpoint
DROP TABLE `__telemetry_peripherals`;--> statement-breakpoint
DROP TABLE `__telemetry_services`;--> statement-breakpoint
DROP TABLE `telemetry`;--> statement-breakpoint
-- The indexes after the data: one sorted build each instead of row-by-row updates.
CREATE UNIQUE INDEX `telemetry_once` ON `telemetry_samples` (`epoch_id`,`seq`);--> statement-breakpoint
CREATE INDEX `telemetry_skewed` ON `telemetry_samples` (`epoch_id`) WHERE skewed = 1;--> statement-breakpoint
-- For SQL read by people and tests: one row per sample with the terminal id, epoch, receive time and host figures in
-- their units (the hub reads telemetry_samples through store/telemetry-codec.ts).
CREATE VIEW `telemetry` AS SELECT e.terminal_id, e.epoch, t.seq, t.ts, t.ts + t.recv_delay AS received_at, t.skewed,
  t.cpu / 100.0 AS cpu, t.mem_used * 1024 AS mem_used, t.mem_total * 1024 AS mem_total, t.disk_used * 1024 AS disk_used,
  t.disk_total * 1024 AS disk_total, t.temp / 10.0 AS temp_c, t.uptime, t.pstat, t.reads, t.failed_reads, t.pnote, t.app,
  t.tx_ok, t.tx_failed, t.app_version, t.services
FROM `telemetry_epochs` e CROSS JOIN `telemetry_samples` t ON t.epoch_id = e.id;