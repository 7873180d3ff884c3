CREATE TABLE `command_results` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`terminal_id` text NOT NULL,
	`epoch` text NOT NULL,
	`seq` integer NOT NULL,
	`ts` integer NOT NULL,
	`received_at` integer NOT NULL,
	`skewed` integer DEFAULT 0 NOT NULL,
	`command_id` text NOT NULL,
	`status` text NOT NULL,
	`result` text,
	`error` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `command_results_once` ON `command_results` (`terminal_id`,`epoch`,`seq`);--> statement-breakpoint
CREATE INDEX `command_results_cmd` ON `command_results` (`command_id`);--> statement-breakpoint
CREATE TABLE `commands` (
	`id` text PRIMARY KEY NOT NULL,
	`terminal_id` text NOT NULL,
	`name` text NOT NULL,
	`args` text NOT NULL,
	`issued_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`status` text NOT NULL,
	`sent_at` integer,
	`completed_at` integer,
	`result` text,
	`error` text,
	`created_by` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `commands_terminal` ON `commands` (`terminal_id`,`issued_at`);--> statement-breakpoint
CREATE TABLE `config_reports` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`terminal_id` text NOT NULL,
	`epoch` text NOT NULL,
	`seq` integer NOT NULL,
	`ts` integer NOT NULL,
	`received_at` integer NOT NULL,
	`skewed` integer DEFAULT 0 NOT NULL,
	`version` integer NOT NULL,
	`status` text NOT NULL,
	`reason` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `config_reports_once` ON `config_reports` (`terminal_id`,`epoch`,`seq`);--> statement-breakpoint
CREATE TABLE `desired_config` (
	`terminal_id` text PRIMARY KEY NOT NULL,
	`version` integer NOT NULL,
	`config` text NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `events` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`terminal_id` text NOT NULL,
	`epoch` text NOT NULL,
	`seq` integer NOT NULL,
	`ts` integer NOT NULL,
	`received_at` integer NOT NULL,
	`skewed` integer DEFAULT 0 NOT NULL,
	`kind` text NOT NULL,
	`severity` text NOT NULL,
	`peripheral` text,
	`code` text,
	`message` text,
	`data` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `events_once` ON `events` (`terminal_id`,`epoch`,`seq`);--> statement-breakpoint
CREATE INDEX `events_time` ON `events` (`terminal_id`,`ts`);--> statement-breakpoint
CREATE TABLE `meta` (
	`key` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `nodes` (
	`id` text PRIMARY KEY NOT NULL,
	`level` text NOT NULL,
	`parent_id` text,
	`name_zh` text NOT NULL,
	`name_en` text NOT NULL,
	`kind` text,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `nodes_parent` ON `nodes` (`parent_id`);--> statement-breakpoint
CREATE TABLE `placements` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`terminal_id` text NOT NULL,
	`from_station` text,
	`to_station` text,
	`by` text NOT NULL,
	`at` integer NOT NULL,
	`reason` text
);
--> statement-breakpoint
CREATE INDEX `placements_terminal` ON `placements` (`terminal_id`,`at`);--> statement-breakpoint
CREATE TABLE `presence_transitions` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`terminal_id` text NOT NULL,
	`at` integer NOT NULL,
	`from_state` text NOT NULL,
	`to_state` text NOT NULL,
	`reason` text NOT NULL,
	`boot_id` text,
	`conn_seq` integer
);
--> statement-breakpoint
CREATE INDEX `presence_transitions_terminal` ON `presence_transitions` (`terminal_id`,`at`);--> statement-breakpoint
CREATE TABLE `rollups_hourly` (
	`terminal_id` text NOT NULL,
	`hour` integer NOT NULL,
	`samples` integer NOT NULL,
	`cpu_min` real,
	`cpu_avg` real,
	`cpu_max` real,
	`mem_pct_min` real,
	`mem_pct_avg` real,
	`mem_pct_max` real,
	`disk_pct_min` real,
	`disk_pct_avg` real,
	`disk_pct_max` real,
	`temp_min` real,
	`temp_avg` real,
	`temp_max` real,
	`peripheral_ok` text NOT NULL,
	`services` text NOT NULL,
	PRIMARY KEY(`terminal_id`, `hour`)
);
--> statement-breakpoint
CREATE INDEX `rollups_hour` ON `rollups_hourly` (`hour`);--> statement-breakpoint
CREATE TABLE `streams` (
	`terminal_id` text NOT NULL,
	`stream` text NOT NULL,
	`epoch` text NOT NULL,
	`first_seq` integer NOT NULL,
	`max_seq` integer NOT NULL,
	`count` integer NOT NULL,
	`last_at` integer NOT NULL,
	PRIMARY KEY(`terminal_id`, `stream`, `epoch`)
);
--> statement-breakpoint
CREATE TABLE `telemetry` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`terminal_id` text NOT NULL,
	`epoch` text NOT NULL,
	`seq` integer NOT NULL,
	`ts` integer NOT NULL,
	`received_at` integer NOT NULL,
	`skewed` integer DEFAULT 0 NOT NULL,
	`cpu` real NOT NULL,
	`mem_used` real NOT NULL,
	`mem_total` real NOT NULL,
	`disk_used` real NOT NULL,
	`disk_total` real NOT NULL,
	`temp_c` real,
	`uptime` real NOT NULL,
	`peripherals` text NOT NULL,
	`app` text,
	`services` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `telemetry_once` ON `telemetry` (`terminal_id`,`epoch`,`seq`);--> statement-breakpoint
CREATE INDEX `telemetry_time` ON `telemetry` (`terminal_id`,`ts`);--> statement-breakpoint
CREATE INDEX `telemetry_received` ON `telemetry` (`received_at`);--> statement-breakpoint
CREATE TABLE `terminal_state` (
	`terminal_id` text PRIMARY KEY NOT NULL,
	`presence` text DEFAULT 'unknown' NOT NULL,
	`presence_reason` text,
	`presence_since` integer,
	`flapping` integer DEFAULT 0 NOT NULL,
	`boot_id` text,
	`conn_seq` integer,
	`interval_s` real,
	`agent_version` text,
	`app_version` text,
	`uptime` real,
	`last_exit` text,
	`last_seen_at` integer,
	`last_telemetry_at` integer,
	`last_telemetry_ts` integer,
	`clock_skew_ms` integer,
	`host` text,
	`peripherals` text,
	`app` text,
	`services` text,
	`fault_count` integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE TABLE `terminals` (
	`id` text PRIMARY KEY NOT NULL,
	`type` text NOT NULL,
	`serial` text NOT NULL,
	`station_id` text NOT NULL,
	`state` text DEFAULT 'active' NOT NULL,
	`secret_hash` text NOT NULL,
	`created_at` integer NOT NULL,
	`decommissioned_at` integer
);
--> statement-breakpoint
CREATE INDEX `terminals_station` ON `terminals` (`station_id`);--> statement-breakpoint
CREATE TABLE `update_status` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`terminal_id` text NOT NULL,
	`epoch` text NOT NULL,
	`seq` integer NOT NULL,
	`ts` integer NOT NULL,
	`received_at` integer NOT NULL,
	`skewed` integer DEFAULT 0 NOT NULL,
	`rollout_id` text,
	`release_id` text,
	`version` text,
	`state` text NOT NULL,
	`progress` real,
	`error` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `update_status_once` ON `update_status` (`terminal_id`,`epoch`,`seq`);--> statement-breakpoint
CREATE TABLE `update_targets` (
	`terminal_id` text PRIMARY KEY NOT NULL,
	`payload` text NOT NULL,
	`updated_at` integer NOT NULL
);
