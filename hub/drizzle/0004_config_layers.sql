CREATE TABLE `config_layer_history` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`scope` text NOT NULL,
	`target_id` text NOT NULL,
	`version` integer NOT NULL,
	`config` text NOT NULL,
	`at` integer NOT NULL,
	`by` text NOT NULL,
	`reason` text,
	`pushed` integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `config_layer_history_version` ON `config_layer_history` (`scope`,`target_id`,`version`);--> statement-breakpoint
CREATE INDEX `config_layer_history_at` ON `config_layer_history` (`at`);--> statement-breakpoint
CREATE TABLE `config_layers` (
	`scope` text NOT NULL,
	`target_id` text NOT NULL,
	`version` integer NOT NULL,
	`config` text NOT NULL,
	`updated_at` integer NOT NULL,
	`updated_by` text NOT NULL,
	`reason` text,
	PRIMARY KEY(`scope`, `target_id`)
);
--> statement-breakpoint
CREATE TABLE `config_sync` (
	`terminal_id` text PRIMARY KEY NOT NULL,
	`applied_version` integer DEFAULT 0 NOT NULL,
	`applied_at` integer,
	`rejected_version` integer DEFAULT 0 NOT NULL,
	`rejected_reason` text,
	`rejected_at` integer
);
--> statement-breakpoint
-- Hand-written: desired configs saved before layers existed become each terminal's own layer (version 1), so the
-- first reconcile finds effective = desired and pushes nothing.
INSERT INTO `config_layers` (`scope`, `target_id`, `version`, `config`, `updated_at`, `updated_by`, `reason`)
  SELECT 'terminal', `terminal_id`, 1, `config`, `updated_at`, 'migration', 'the desired config before layered config' FROM `desired_config`;--> statement-breakpoint
INSERT INTO `config_layer_history` (`scope`, `target_id`, `version`, `config`, `at`, `by`, `reason`, `pushed`)
  SELECT 'terminal', `terminal_id`, 1, `config`, `updated_at`, 'migration', 'the desired config before layered config', 0 FROM `desired_config`;--> statement-breakpoint
INSERT INTO `config_sync` (`terminal_id`, `applied_version`, `applied_at`, `rejected_version`, `rejected_reason`, `rejected_at`)
  SELECT `terminal_id`,
    coalesce(max(CASE WHEN `status` = 'applied' THEN `version` END), 0), max(CASE WHEN `status` = 'applied' THEN `received_at` END),
    coalesce(max(CASE WHEN `status` = 'rejected' THEN `version` END), 0), NULL, max(CASE WHEN `status` = 'rejected' THEN `received_at` END)
  FROM `config_reports` GROUP BY `terminal_id`;
