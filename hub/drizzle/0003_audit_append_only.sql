-- The audit log is append-only: the hub never changes or removes a record. (Someone holding the file can drop these
-- triggers; the hash chain then shows where the log was changed: GET /api/v1/audit/verify.)
CREATE TRIGGER `audit_log_no_update` BEFORE UPDATE ON `audit_log` BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
--> statement-breakpoint
CREATE TRIGGER `audit_log_no_delete` BEFORE DELETE ON `audit_log` BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
