-- The W3C trace context a producer gave a job (`traceparent`), handed to its worker so the
-- trace continues there; NULL when none was given. In step with
-- crates/store-sqlite/migrations/0004_job_traceparent.sql.
ALTER TABLE buzzer_jobs ADD COLUMN traceparent text;
