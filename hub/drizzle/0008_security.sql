ALTER TABLE `presence_transitions` ADD `address` text;--> statement-breakpoint
ALTER TABLE `terminal_state` ADD `last_address` text;--> statement-breakpoint
ALTER TABLE `terminal_state` ADD `flooding` text;--> statement-breakpoint
ALTER TABLE `terminal_state` ADD `credential_conflict` text;