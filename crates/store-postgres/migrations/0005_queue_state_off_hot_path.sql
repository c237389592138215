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

