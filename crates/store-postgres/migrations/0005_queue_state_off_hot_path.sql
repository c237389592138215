-- Takes `buzzer_jobs_queue_state` off the hot path. A job's three hot writes (insert as
-- available, lease to running, complete) each added an entry to it: a third of the index
-- inserts of W1, for counts and lists that are rare next to them. It now holds only what no
-- other index can count: jobs in the cold states (scheduled, retryable and the finished ones)
-- and blocked jobs. The hot states are counted from the partial indexes that already hold
-- them: unblocked available jobs from `buzzer_jobs_fetch` (queue first), running jobs from
-- `buzzer_jobs_lease` (as many as the workers' slots). The counts take a blocked job from this
-- index whatever its state, so the three parts never overlap. src/queues.rs and
-- src/jobs/read.rs are written against these predicates (tests/plans.rs checks).
--
-- Migrations run in one transaction, so the index is built with writers held off; on a large
-- table that takes a moment, once.
DROP INDEX buzzer_jobs_queue_state;
CREATE INDEX buzzer_jobs_queue_state ON buzzer_jobs (queue, state, id)
    WHERE state NOT IN ('available', 'running') OR blocked;

-- The same notifications for less work in the common case, a batch of one queue (every fetch
-- and ack batch of a single-queue worker): no window function and one sort fewer. Payloads are
-- byte for byte those of 0001's version, which stays the path for batches of several queues.
CREATE OR REPLACE FUNCTION buzzer_notify(queues text[], states text[], ids bigint[], per_job boolean)
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
    IF per_job AND cardinality(ids) <= 2000 AND queues[1] = ALL(queues) THEN
        FOR r IN
            SELECT string_agg(buzzer_state_code(u.state) || u.id, ',' ORDER BY u.n) AS items
              FROM unnest(states, ids) WITH ORDINALITY AS u(state, id, n)
             GROUP BY (u.n - 1) / 300
             ORDER BY (u.n - 1) / 300
        LOOP
            PERFORM pg_notify(channel, origin || ' ' || queues[1] || ' ' || r.items);
            sent := sent + 1;
        END LOOP;
    ELSIF per_job AND cardinality(ids) <= 2000 THEN
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
