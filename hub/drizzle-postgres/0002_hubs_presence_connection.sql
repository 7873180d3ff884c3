CREATE TABLE "hubs" (
	"id" text PRIMARY KEY NOT NULL,
	"version" text NOT NULL,
	"started_at" bigint NOT NULL,
	"lease_expires_at" bigint NOT NULL,
	"connected_terminals" bigint DEFAULT 0 NOT NULL,
	"leader_of" text DEFAULT '[]' NOT NULL
);
--> statement-breakpoint
ALTER TABLE "terminal_state" ADD COLUMN "conn_hub" text;--> statement-breakpoint
ALTER TABLE "terminal_state" ADD COLUMN "conn_gen" bigint;--> statement-breakpoint
CREATE INDEX "hubs_lease" ON "hubs" USING btree ("lease_expires_at");--> statement-breakpoint
CREATE INDEX "terminal_state_conn_hub" ON "terminal_state" USING btree ("conn_hub");