CREATE TABLE `hubs` (
	`id` text PRIMARY KEY NOT NULL,
	`version` text NOT NULL,
	`started_at` integer NOT NULL,
	`lease_expires_at` integer NOT NULL,
	`connected_terminals` integer DEFAULT 0 NOT NULL,
	`leader_of` text DEFAULT '[]' NOT NULL
);
--> statement-breakpoint
CREATE INDEX `hubs_lease` ON `hubs` (`lease_expires_at`);--> statement-breakpoint
ALTER TABLE `terminal_state` ADD `conn_hub` text;--> statement-breakpoint
ALTER TABLE `terminal_state` ADD `conn_gen` integer;--> statement-breakpoint
CREATE INDEX `terminal_state_conn_hub` ON `terminal_state` (`conn_hub`);