ALTER TABLE `terminal_state` ADD `tel_epoch` text;--> statement-breakpoint
ALTER TABLE `terminal_state` ADD `tel_first_seq` integer;--> statement-breakpoint
ALTER TABLE `terminal_state` ADD `tel_max_seq` integer;--> statement-breakpoint
ALTER TABLE `terminal_state` ADD `tel_count` integer;--> statement-breakpoint
ALTER TABLE `terminal_state` ADD `tel_last_at` integer;