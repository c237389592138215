-- A job's state is a small integer, not its name. Every insert, lease and completion checks
-- the state against the table's CHECK and against each partial index's WHERE, for the row
-- before and after: ~66 comparisons per job's life, each a call into SQLite's text comparison
-- (collation, length, memcmp) when the state was text, ~14% of the SQLite work of a raw loop
-- of the store's statements. Integers compare inline in the bytecode engine.
--
-- The codes follow the lifecycle; `job_states` names them, for anyone reading the file with
-- the sqlite3 shell. The store's SQL writes each code with its name beside it, `2 /*running*/`,
-- and src/state.rs holds the same table (a test checks every such pair in the store's SQL).
--
-- Rebuilt the documented way, as in migration 7: a new table, the rows copied, the old one
-- dropped and the new one renamed, keeping every row, its id and the AUTOINCREMENT counter.
-- Each partial index keeps its name and its shape, with the codes for the names.

CREATE TABLE job_states (
    code INTEGER PRIMARY KEY,
    name TEXT    NOT NULL UNIQUE
);
INSERT INTO job_states (code, name) VALUES
    (0, 'scheduled'), (1, 'available'), (2, 'running'), (3, 'retryable'),
    (4, 'completed'), (5, 'dead'), (6, 'cancelled');

DROP VIEW job_rows;

CREATE TABLE jobs_new (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    queue              TEXT    NOT NULL,
    state              INTEGER NOT NULL CHECK (state BETWEEN 0 AND 6),  -- job_states.code
    priority           INTEGER NOT NULL,
    attempt            INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    scheduled_at       INTEGER NOT NULL,
    started_at         INTEGER,
    finished_at        INTEGER,
    idempotency_key    TEXT,
    ordering_key       TEXT,
    -- 1 while an earlier unfinished job holds this job's ordering key; fetch skips it.
    blocked            INTEGER NOT NULL DEFAULT 0,
    cancel_requested   INTEGER NOT NULL DEFAULT 0,
    worker_id          TEXT,
    lease_token        TEXT,
    lease_expires_at   INTEGER
);

-- A state with no code (a hand-edited row) makes the code NULL and the migration fail on
-- NOT NULL, leaving the file as it was, rather than a join dropping the row.
INSERT INTO jobs_new (id, queue, state, priority, attempt, scheduled_at, started_at,
                      finished_at, idempotency_key, ordering_key, blocked, cancel_requested,
                      worker_id, lease_token, lease_expires_at)
    SELECT j.id, j.queue, (SELECT s.code FROM job_states AS s WHERE s.name = j.state),
           j.priority, j.attempt, j.scheduled_at, j.started_at, j.finished_at,
           j.idempotency_key, j.ordering_key, j.blocked, j.cancel_requested, j.worker_id,
           j.lease_token, j.lease_expires_at
    FROM jobs AS j;

DELETE FROM sqlite_sequence WHERE name = 'jobs_new';
UPDATE sqlite_sequence SET name = 'jobs_new' WHERE name = 'jobs';

DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;

CREATE INDEX jobs_fetch ON jobs (queue, priority DESC, id, scheduled_at)
    WHERE state = 1 /*available*/ AND blocked = 0;
CREATE INDEX jobs_due ON jobs (scheduled_at)
    WHERE state IN (0 /*scheduled*/, 3 /*retryable*/);
CREATE INDEX jobs_lease ON jobs (lease_expires_at, queue)
    WHERE state = 2 /*running*/;
CREATE UNIQUE INDEX jobs_idempotency ON jobs (queue, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_ordering ON jobs (queue, ordering_key, blocked, id)
    WHERE ordering_key IS NOT NULL
      AND (state = 0 /*scheduled*/ OR state = 1 /*available*/ OR state = 2 /*running*/
           OR state = 3 /*retryable*/);
CREATE INDEX jobs_prune_finished ON jobs (finished_at)
    WHERE state IN (4 /*completed*/, 6 /*cancelled*/);
CREATE INDEX jobs_prune_dead ON jobs (finished_at)
    WHERE state = 5 /*dead*/;
CREATE INDEX jobs_resting ON jobs (queue, state)
    WHERE state = 0 /*scheduled*/ OR state = 3 /*retryable*/ OR state = 5 /*dead*/
       OR state = 6 /*cancelled*/;

CREATE TRIGGER jobs_delete_body AFTER DELETE ON jobs
BEGIN
    DELETE FROM job_bodies WHERE id = old.id;
END;

CREATE VIEW job_rows AS
    SELECT j.id, j.queue, j.state, b.payload, j.priority, j.attempt, b.max_attempts,
           b.backoff_initial_ms, b.backoff_max_ms, b.backoff_factor, b.timeout_ms,
           b.created_at, j.scheduled_at, j.started_at, j.finished_at, b.result, b.errors,
           j.idempotency_key, j.ordering_key, j.blocked, b.tags, b.metadata, b.progress,
           j.cancel_requested, j.worker_id, j.lease_token, j.lease_expires_at, b.traceparent
    FROM jobs AS j CROSS JOIN job_bodies AS b ON b.id = j.id;
