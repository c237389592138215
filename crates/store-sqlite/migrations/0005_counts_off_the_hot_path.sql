-- Per-state counts cost the hot transitions nothing. `jobs_queue_state (queue, state)` took a
-- delete and an insert on every state change: five of the thirteen B-tree writes of a job's
-- life (enqueue, lease, complete). Now only the states a job rests in are indexed by queue;
-- the two hot states are counted off the indexes their own queries already keep:
-- `available` off `jobs_fetch` (plus the few blocked behind an ordering key, off
-- `jobs_ordering`), `running` off `jobs_lease`, which now carries the queue so that count
-- never reads the table. A completed job is written into it once, and never moved again.
--
-- The WHERE is an OR of equalities, not `IN (…)`: SQLite proves a query's `state = 'dead'`
-- implies an OR of terms, not an IN list. Keep src/queues.rs and src/jobs/ in step.

DROP INDEX jobs_queue_state;
CREATE INDEX jobs_resting ON jobs (queue, state)
    WHERE state = 'scheduled' OR state = 'retryable' OR state = 'completed'
       OR state = 'dead' OR state = 'cancelled';

DROP INDEX jobs_lease;
CREATE INDEX jobs_lease ON jobs (lease_expires_at, queue)
    WHERE state = 'running';
