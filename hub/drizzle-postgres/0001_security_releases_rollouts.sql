CREATE TABLE "release_artifact_chunks" (
	"content_id" text NOT NULL,
	"n" bigint NOT NULL,
	"data" "bytea" NOT NULL,
	"written_at" bigint NOT NULL,
	CONSTRAINT "release_artifact_chunks_content_id_n_pk" PRIMARY KEY("content_id","n")
);
--> statement-breakpoint
CREATE TABLE "release_artifacts" (
	"sha256" text PRIMARY KEY NOT NULL,
	"size" bigint NOT NULL,
	"chunk_size" bigint NOT NULL,
	"chunks" bigint NOT NULL,
	"content_id" text NOT NULL,
	"stored_at" bigint NOT NULL,
	CONSTRAINT "release_artifacts_content_id_unique" UNIQUE("content_id")
);
--> statement-breakpoint
CREATE TABLE "rollouts" (
	"id" text PRIMARY KEY NOT NULL,
	"release_id" text NOT NULL,
	"status" text NOT NULL,
	"created_by" text NOT NULL,
	"created_at" bigint NOT NULL,
	"updated_at" bigint NOT NULL,
	"spec" text NOT NULL,
	"state" text NOT NULL
);
--> statement-breakpoint
ALTER TABLE "presence_transitions" ADD COLUMN "address" text;--> statement-breakpoint
ALTER TABLE "terminal_state" ADD COLUMN "last_address" text;--> statement-breakpoint
ALTER TABLE "terminal_state" ADD COLUMN "flooding" text;--> statement-breakpoint
ALTER TABLE "terminal_state" ADD COLUMN "credential_conflict" text;--> statement-breakpoint
CREATE INDEX "rollouts_status" ON "rollouts" USING btree ("status");--> statement-breakpoint
CREATE INDEX "rollouts_release" ON "rollouts" USING btree ("release_id");