-- `state` is checked with ORs of equalities, not IN lists. SQLite codes an IN list of more than
-- two values as a small temporary B-tree, and inside a CHECK constraint or a partial index's
-- WHERE it builds that B-tree again for every row it writes: every insert, lease and
-- completion opened one and filled it with seven states only to check the row's own. In a raw
-- loop of the store's statements that was a third of the lease and complete work and over
-- 40% of the insert's. An OR of equalities is a handful of comparisons.
--
-- SQLite cannot change a CHECK in place, so `jobs` is rebuilt (the documented way: a new
-- table, the rows copied, the old one dropped, the new one renamed), keeping every row, its
-- id and the AUTOINCREMENT counter, and its indexes, trigger and view are made again.
-- `jobs_ordering` gets the same OR in its WHERE; the ordering queries spell it identically
-- (src/jobs/mod.rs), since SQLite matches a partial index's terms to a query's term by term.
-- `jobs_fetch` gains a column (below).

DROP VIEW job_rows;

CREATE TABLE jobs_new (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    queue              TEXT    NOT NULL,
    state              TEXT    NOT NULL CHECK (state = 'scheduled' OR state = 'available'
                                   OR state = 'running' OR state = 'retryable'
                                   OR state = 'completed' OR state = 'dead'
                                   OR state = 'cancelled'),
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

INSERT INTO jobs_new (id, queue, state, priority, attempt, scheduled_at, started_at,
                      finished_at, idempotency_key, ordering_key, blocked, cancel_requested,
                      worker_id, lease_token, lease_expires_at)
    SELECT id, queue, state, priority, attempt, scheduled_at, started_at, finished_at,
           idempotency_key, ordering_key, blocked, cancel_requested, worker_id, lease_token,
           lease_expires_at
    FROM jobs;

-- The id counter moves with the rows, so no id is ever handed out twice (the newest jobs may
-- have been pruned, leaving the counter above the largest id copied).
DELETE FROM sqlite_sequence WHERE name = 'jobs_new';
UPDATE sqlite_sequence SET name = 'jobs_new' WHERE name = 'jobs';

-- Takes the old table's indexes and trigger with it (a DROP fires no DELETE trigger).
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;

-- `scheduled_at` rides along so a queue's count of available jobs and the oldest one's age
-- (`GET /v1/queues/{name}`, the dashboard, a bench polling for its end) read the index alone:
-- without it they read every available job's row, a seek per job, each time they asked.
CREATE INDEX jobs_fetch ON jobs (queue, priority DESC, id, scheduled_at)
    WHERE state = 'available' AND blocked = 0;
CREATE INDEX jobs_due ON jobs (scheduled_at)
    WHERE state IN ('scheduled', 'retryable');
CREATE INDEX jobs_lease ON jobs (lease_expires_at, queue)
    WHERE state = 'running';
CREATE UNIQUE INDEX jobs_idempotency ON jobs (queue, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_ordering ON jobs (queue, ordering_key, blocked, id)
    WHERE ordering_key IS NOT NULL
      AND (state = 'scheduled' OR state = 'available' OR state = 'running'
           OR state = 'retryable');
CREATE INDEX jobs_prune_finished ON jobs (finished_at)
    WHERE state IN ('completed', 'cancelled');
CREATE INDEX jobs_prune_dead ON jobs (finished_at)
    WHERE state = 'dead';
CREATE INDEX jobs_resting ON jobs (queue, state)
    WHERE state = 'scheduled' OR state = 'retryable' OR state = 'completed'
       OR state = 'dead' OR state = 'cancelled';

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
