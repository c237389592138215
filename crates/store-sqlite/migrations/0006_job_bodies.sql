-- A job's hot row holds only what its transitions change or its indexes read; what it carries
-- unchanged from enqueue to the end (payload, options, tags, metadata) and what only its end
-- or an operator writes (result, errors, progress) lives in `job_bodies`, one row per job
-- under the same id. A lease or a completion rewrites the whole record of the row it
-- changes: with the payload and twenty-seven columns in it, that rewrite was most of the
-- SQLite work per job (a raw loop leased and completed ~1.9x as many jobs per second on the
-- split rows). `job_rows` joins the two back into the full job every reader sees.

CREATE TABLE job_bodies (
    id                 INTEGER PRIMARY KEY,   -- the job's id
    payload            TEXT    NOT NULL,
    max_attempts       INTEGER NOT NULL CHECK (max_attempts >= 1),
    backoff_initial_ms INTEGER NOT NULL,
    backoff_max_ms     INTEGER NOT NULL,
    backoff_factor     REAL    NOT NULL,
    timeout_ms         INTEGER,
    created_at         INTEGER NOT NULL,
    result             TEXT,
    errors             TEXT,    -- JSON array of {attempt, at, message, ..details}; NULL = none
    tags               TEXT,    -- JSON array; NULL = none
    metadata           TEXT,    -- JSON object; NULL = empty
    progress           TEXT,
    traceparent        TEXT
);

INSERT INTO job_bodies (id, payload, max_attempts, backoff_initial_ms, backoff_max_ms,
                        backoff_factor, timeout_ms, created_at, result, errors, tags, metadata,
                        progress, traceparent)
    SELECT id, payload, max_attempts, backoff_initial_ms, backoff_max_ms, backoff_factor,
           timeout_ms, created_at, result, errors, tags, metadata, progress, traceparent
    FROM jobs;

ALTER TABLE jobs DROP COLUMN payload;
ALTER TABLE jobs DROP COLUMN max_attempts;
ALTER TABLE jobs DROP COLUMN backoff_initial_ms;
ALTER TABLE jobs DROP COLUMN backoff_max_ms;
ALTER TABLE jobs DROP COLUMN backoff_factor;
ALTER TABLE jobs DROP COLUMN timeout_ms;
ALTER TABLE jobs DROP COLUMN created_at;
ALTER TABLE jobs DROP COLUMN result;
ALTER TABLE jobs DROP COLUMN errors;
ALTER TABLE jobs DROP COLUMN tags;
ALTER TABLE jobs DROP COLUMN metadata;
ALTER TABLE jobs DROP COLUMN progress;
ALTER TABLE jobs DROP COLUMN traceparent;

-- Every way a job leaves (pruning, an operator's delete) takes its body with it.
CREATE TRIGGER jobs_delete_body AFTER DELETE ON jobs
BEGIN
    DELETE FROM job_bodies WHERE id = old.id;
END;

-- The full job, in the column names the rest of the store reads (src/row.rs). CROSS JOIN
-- keeps `jobs` the outer loop, so every query is driven by the indexes on `jobs`.
CREATE VIEW job_rows AS
    SELECT j.id, j.queue, j.state, b.payload, j.priority, j.attempt, b.max_attempts,
           b.backoff_initial_ms, b.backoff_max_ms, b.backoff_factor, b.timeout_ms,
           b.created_at, j.scheduled_at, j.started_at, j.finished_at, b.result, b.errors,
           j.idempotency_key, j.ordering_key, j.blocked, b.tags, b.metadata, b.progress,
           j.cancel_requested, j.worker_id, j.lease_token, j.lease_expires_at, b.traceparent
    FROM jobs AS j CROSS JOIN job_bodies AS b ON b.id = j.id;
