-- Buzzer's first schema. Times are integer milliseconds since the Unix epoch; JSON columns hold
-- the exact text a client sent (payload, result, progress) or text this store wrote.

-- Marks the file as Buzzer's ("BUZZ"), so `open` can refuse some other application's database.
PRAGMA application_id = 1112889946;

CREATE TABLE queues (
    name       TEXT    PRIMARY KEY NOT NULL,
    paused     INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- AUTOINCREMENT: an id is never handed out twice, even after the newest job was pruned, so ids
-- stay valid cursors and a stale id can never name a different job.
CREATE TABLE jobs (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    queue              TEXT    NOT NULL,
    state              TEXT    NOT NULL CHECK (state IN ('scheduled', 'available', 'running',
                                   'retryable', 'completed', 'dead', 'cancelled')),
    payload            TEXT    NOT NULL,
    priority           INTEGER NOT NULL,
    attempt            INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts       INTEGER NOT NULL CHECK (max_attempts >= 1),
    backoff_initial_ms INTEGER NOT NULL,
    backoff_max_ms     INTEGER NOT NULL,
    backoff_factor     REAL    NOT NULL,
    timeout_ms         INTEGER,
    created_at         INTEGER NOT NULL,
    scheduled_at       INTEGER NOT NULL,
    started_at         INTEGER,
    finished_at        INTEGER,
    result             TEXT,
    errors             TEXT,    -- JSON array of {attempt, at, message, ..details}; NULL = none
    idempotency_key    TEXT,
    ordering_key       TEXT,
    -- 1 while an earlier unfinished job holds this job's ordering key; fetch skips it.
    blocked            INTEGER NOT NULL DEFAULT 0,
    tags               TEXT,    -- JSON array; NULL = none
    metadata           TEXT,    -- JSON object; NULL = empty
    progress           TEXT,
    cancel_requested   INTEGER NOT NULL DEFAULT 0,
    worker_id          TEXT,
    lease_token        TEXT,
    lease_expires_at   INTEGER
);

-- The partial indexes hold only the rows their query can want, so a million scheduled jobs
-- cost fetch nothing. A query uses one only if its WHERE repeats the index's terms exactly
-- (same state literals, same order): keep the SQL in src/jobs/ in step with this file.

-- Fetch: walked in order per queue, so a fetch never sorts the available rows.
CREATE INDEX jobs_fetch ON jobs (queue, priority DESC, id)
    WHERE state = 'available' AND blocked = 0;

-- Promotion and the scheduler's next wake-up.
CREATE INDEX jobs_due ON jobs (scheduled_at)
    WHERE state IN ('scheduled', 'retryable');

-- The rescuer: expired leases and the next expiry.
CREATE INDEX jobs_lease ON jobs (lease_expires_at)
    WHERE state = 'running';

CREATE UNIQUE INDEX jobs_idempotency ON jobs (queue, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Ordering keys: "is any job of this key unfinished", "is the key's head unblocked" and "the
-- oldest blocked job of the key" are each one seek.
CREATE INDEX jobs_ordering ON jobs (queue, ordering_key, blocked, id)
    WHERE ordering_key IS NOT NULL
      AND state IN ('scheduled', 'available', 'running', 'retryable');

-- Retention.
CREATE INDEX jobs_prune_finished ON jobs (finished_at)
    WHERE state IN ('completed', 'cancelled');
CREATE INDEX jobs_prune_dead ON jobs (finished_at)
    WHERE state = 'dead';

-- Counts per queue and state; the implicit trailing rowid also serves "dead jobs of a queue,
-- oldest first" and lists filtered by queue and state, newest first.
CREATE INDEX jobs_queue_state ON jobs (queue, state);
