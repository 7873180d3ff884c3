CREATE TABLE `alert_deliveries` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`webhook_id` integer NOT NULL,
	`alert_id` integer NOT NULL,
	`event` text NOT NULL,
	`payload` text NOT NULL,
	`status` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`next_at` integer NOT NULL,
	`last_status` integer,
	`last_error` text,
	`created_at` integer NOT NULL,
	`delivered_at` integer
);
--> statement-breakpoint
CREATE INDEX `alert_deliveries_due` ON `alert_deliveries` (`status`,`next_at`);--> statement-breakpoint
CREATE INDEX `alert_deliveries_webhook` ON `alert_deliveries` (`webhook_id`,`id`);--> statement-breakpoint
CREATE TABLE `alert_history` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`alert_id` integer NOT NULL,
	`at` integer NOT NULL,
	`actor` text NOT NULL,
	`action` text NOT NULL,
	`note` text,
	`data` text
);
--> statement-breakpoint
CREATE INDEX `alert_history_alert` ON `alert_history` (`alert_id`,`id`);--> statement-breakpoint
CREATE TABLE `alert_silences` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`node_id` text NOT NULL,
	`rule` text NOT NULL,
	`until` integer NOT NULL,
	`reason` text,
	`created_by` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `alert_silences_until` ON `alert_silences` (`until`);--> statement-breakpoint
CREATE TABLE `alert_webhooks` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`url` text NOT NULL,
	`secret` text NOT NULL,
	`enabled` integer DEFAULT 1 NOT NULL,
	`created_by` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `alerts` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`open_key` text,
	`subject_kind` text NOT NULL,
	`subject_id` text NOT NULL,
	`node_id` text NOT NULL,
	`rule` text NOT NULL,
	`severity` text NOT NULL,
	`state` text NOT NULL,
	`title` text NOT NULL,
	`details` text NOT NULL,
	`opened_at` integer NOT NULL,
	`last_seen_at` integer NOT NULL,
	`due_at` integer NOT NULL,
	`acknowledged_at` integer,
	`acknowledged_by` text,
	`assigned_to` text,
	`assigned_at` integer,
	`escalated_at` integer,
	`escalated_to` text,
	`resolved_at` integer,
	`resolved_by` text,
	`resolution` text,
	`resolution_note` text,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `alerts_open_key` ON `alerts` (`open_key`);--> statement-breakpoint
CREATE INDEX `alerts_state` ON `alerts` (`state`,`opened_at`);--> statement-breakpoint
CREATE INDEX `alerts_node` ON `alerts` (`node_id`,`opened_at`);--> statement-breakpoint
CREATE INDEX `alerts_subject` ON `alerts` (`subject_id`,`opened_at`);--> statement-breakpoint
CREATE TABLE `maintenance` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`target_kind` text NOT NULL,
	`target_id` text NOT NULL,
	`node_id` text NOT NULL,
	`reason` text NOT NULL,
	`starts_at` integer NOT NULL,
	`ends_at` integer NOT NULL,
	`created_by` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `maintenance_target` ON `maintenance` (`target_id`,`ends_at`);--> statement-breakpoint
CREATE INDEX `maintenance_ends` ON `maintenance` (`ends_at`);