-- Buzzer's first PostgreSQL schema, in step with crates/store-sqlite/migrations/0001_init.sql.
-- Every object is prefixed `buzzer_`: Buzzer often shares a database (and a schema) with the
-- application that enqueues into it inside its own transactions.
--
-- Times are timestamptz, always whole milliseconds (the store truncates `now()`), so they
-- compare and serialise exactly like the SQLite store's integer milliseconds. payload, result
-- and progress are `json`, which keeps the exact text a client sent; metadata and errors are
-- `jsonb`, which this store writes itself and operators may query.

CREATE TABLE buzzer_queues (
    name       text        PRIMARY KEY,
    paused     boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL
);

-- Ids come from an identity sequence: never handed out twice, even after pruning, so ids stay
-- valid cursors and a stale id never names another job. Inserts take their ids from the same
-- sequence up front (OVERRIDING SYSTEM VALUE), so a batch knows which id went to which job.
CREATE TABLE buzzer_jobs (
    id                 bigint           GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME buzzer_jobs_id_seq)
                                        PRIMARY KEY,
    queue              text             NOT NULL,
    state              text             NOT NULL CHECK (state IN ('scheduled', 'available',
                                            'running', 'retryable', 'completed', 'dead',
                                            'cancelled')),
    priority           integer          NOT NULL,
    attempt            integer          NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts       integer          NOT NULL CHECK (max_attempts >= 1),
    -- true while an earlier unfinished job holds this job's ordering key; fetch skips it.
    blocked            boolean          NOT NULL DEFAULT false,
    cancel_requested   boolean          NOT NULL DEFAULT false,
    backoff_initial_ms bigint           NOT NULL,
    backoff_max_ms     bigint           NOT NULL,
    backoff_factor     double precision NOT NULL,
    timeout_ms         bigint,
    created_at         timestamptz      NOT NULL,
    scheduled_at       timestamptz      NOT NULL,
    started_at         timestamptz,
    finished_at        timestamptz,
    lease_expires_at   timestamptz,
    lease_token        text,
    worker_id          text,
    idempotency_key    text,
    ordering_key       text,
    tags               text[]           NOT NULL DEFAULT '{}',
    payload            json             NOT NULL,
    result             json,
    progress           json,
    metadata           jsonb            NOT NULL DEFAULT '{}',
    errors             jsonb            NOT NULL DEFAULT '[]'  -- [{attempt, at, message, ..details}]
);

-- A job queue table is the highest-churn table a database can have: every job is inserted,
-- updated three or more times (available → running → completed, plus heartbeats) and deleted
-- a day later, so most of the table's history is dead row versions.
-- - fillfactor 80 leaves a fifth of every page free, so the new version of an updated row
--   usually fits on the row's own page. Updates that change no indexed column (progress,
--   cancel_requested) then become HOT: no new index entries at all. State transitions do change
--   indexed columns, but a same-page new version still dirties one heap page instead of two.
-- - autovacuum after 1% dead rows (default 20%) with no cost delay: the hot partial indexes
--   (fetch, due, lease) are tiny but see every transition; dead entries in them are what a
--   fetch has to step over, so vacuum must keep up with the churn rather than wait for a fifth
--   of a table of mostly finished jobs to die.
-- - analyze after 2% changes: the mix of states moves fast and the planner should know it.
ALTER TABLE buzzer_jobs SET (
    fillfactor = 80,
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_insert_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_delay = 0
);

-- The partial indexes hold only the rows their query can want, so scheduled and finished jobs
-- cost the hot path nothing. PostgreSQL uses one only if the query's WHERE implies the index's
-- predicate: keep the SQL in src/jobs/ in step with this file (tests/plans.rs checks).

-- Fetch: walked in order per queue (FOR UPDATE SKIP LOCKED), so a fetch never sorts.
CREATE INDEX buzzer_jobs_fetch ON buzzer_jobs (queue, priority DESC, id)
    WHERE state = 'available' AND NOT blocked;

-- Promotion and the scheduler's next wake-up.
CREATE INDEX buzzer_jobs_due ON buzzer_jobs (scheduled_at)
    WHERE state IN ('scheduled', 'retryable');

-- The rescuer: expired leases and the next expiry.
CREATE INDEX buzzer_jobs_lease ON buzzer_jobs (lease_expires_at)
    WHERE state = 'running';

-- Idempotent enqueue: INSERT … ON CONFLICT DO NOTHING against this index.
CREATE UNIQUE INDEX buzzer_jobs_idempotency ON buzzer_jobs (queue, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Ordering keys: "is any job of this key unfinished", "does the key have a head" and "the
-- oldest blocked job of the key" are each one index probe.
CREATE INDEX buzzer_jobs_ordering ON buzzer_jobs (queue, ordering_key, blocked, id)
    WHERE ordering_key IS NOT NULL
      AND state IN ('scheduled', 'available', 'running', 'retryable');

-- Retention.
CREATE INDEX buzzer_jobs_prune_finished ON buzzer_jobs (finished_at)
    WHERE state IN ('completed', 'cancelled');
CREATE INDEX buzzer_jobs_prune_dead ON buzzer_jobs (finished_at)
    WHERE state = 'dead';

-- Counts per queue and state (index-only), dead jobs of a queue oldest first, and lists by
-- queue and state newest first.
CREATE INDEX buzzer_jobs_queue_state ON buzzer_jobs (queue, state, id);

-- The node that runs the background services (scheduler, rescuer, pruner). One row per role;
-- a node holds it while `expires_at` (the database's clock) is ahead.
CREATE TABLE buzzer_leader (
    name       text        PRIMARY KEY,
    node_id    text        NOT NULL,
    elected_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

-- One letter per state in change notifications.
CREATE FUNCTION buzzer_state_code(state text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE state
        WHEN 'scheduled' THEN 's' WHEN 'available' THEN 'a' WHEN 'running' THEN 'r'
        WHEN 'retryable' THEN 'y' WHEN 'completed' THEN 'c' WHEN 'dead' THEN 'd'
        WHEN 'cancelled' THEN 'x' END
$$;

-- Tells every node listening on this schema's channel that jobs changed. Called in the same
-- transaction as the change, so PostgreSQL delivers it on commit and never for a rollback.
--
-- Channel: `buzzer_changes:<schema of buzzer_jobs>`. Payload (each under 8000 bytes):
--   `<origin> <queue> <code><id>,<code><id>,…`   per job, at most 300 per payload;
--   `<origin> <queue> !<code><id>,…`             bulk: one job per state stands for all of
--                                                 them (inserts, or over 2000 jobs at once).
-- `origin` is the sending store's `buzzer.origin` setting (so a store skips its own changes)
-- or `-` from any other connection, e.g. an application's transactional enqueue. The decoder
-- is src/listen.rs.
CREATE FUNCTION buzzer_notify(queues text[], states text[], ids bigint[], per_job boolean)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    channel text;
    origin  text := coalesce(nullif(current_setting('buzzer.origin', true), ''), '-');
    sent    integer := 0;
    r       record;
BEGIN
    SELECT 'buzzer_changes:' || n.nspname INTO channel
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = 'buzzer_jobs'::regclass;
    IF per_job AND cardinality(ids) <= 2000 THEN
        FOR r IN
            SELECT t.queue, string_agg(buzzer_state_code(t.state) || t.id, ',' ORDER BY t.n) AS items
              FROM (SELECT u.queue, u.state, u.id, u.n,
                           (row_number() OVER (PARTITION BY u.queue ORDER BY u.n) - 1) / 300 AS chunk
                      FROM unnest(queues, states, ids) WITH ORDINALITY AS u(queue, state, id, n)) t
             GROUP BY t.queue, t.chunk
        LOOP
            PERFORM pg_notify(channel, origin || ' ' || r.queue || ' ' || r.items);
            sent := sent + 1;
        END LOOP;
    ELSE
        FOR r IN
            SELECT t.queue, string_agg(buzzer_state_code(t.state) || t.id, ',') AS items
              FROM (SELECT u.queue, u.state, min(u.id) AS id
                      FROM unnest(queues, states, ids) AS u(queue, state, id)
                     GROUP BY u.queue, u.state) t
             GROUP BY t.queue
        LOOP
            PERFORM pg_notify(channel, origin || ' ' || r.queue || ' !' || r.items);
            sent := sent + 1;
        END LOOP;
    END IF;
    RETURN sent;
END
$$;
