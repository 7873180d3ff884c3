CREATE TABLE `release_artifact_chunks` (
	`content_id` text NOT NULL,
	`n` integer NOT NULL,
	`data` blob NOT NULL,
	`written_at` integer NOT NULL,
	PRIMARY KEY(`content_id`, `n`)
);
--> statement-breakpoint
CREATE TABLE `release_artifacts` (
	`sha256` text PRIMARY KEY NOT NULL,
	`size` integer NOT NULL,
	`chunk_size` integer NOT NULL,
	`chunks` integer NOT NULL,
	`content_id` text NOT NULL,
	`stored_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `release_artifacts_content_id_unique` ON `release_artifacts` (`content_id`);--> statement-breakpoint
CREATE TABLE `rollouts` (
	`id` text PRIMARY KEY NOT NULL,
	`release_id` text NOT NULL,
	`status` text NOT NULL,
	`created_by` text NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`spec` text NOT NULL,
	`state` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `rollouts_status` ON `rollouts` (`status`);--> statement-breakpoint
CREATE INDEX `rollouts_release` ON `rollouts` (`release_id`);