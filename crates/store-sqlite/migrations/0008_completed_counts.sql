-- Completed jobs are counted in one row per queue instead of an index entry per job. The
-- completion was the last hot transition writing `jobs_resting`: one B-tree insert per job
-- (about 5,000 of the writer's instructions), only so that a queue's completed count could be
-- read, and that read still walked one entry per completed job (80 ms at a million). The
-- writer now adds each batch's completions to its queue's row, and subtracts what pruning
-- and deletes take away; the count is one row read. Lists of a queue's completed jobs walk
-- the table newest first, as lists of its available and running jobs already do.

CREATE TABLE queue_completed (
    queue TEXT    PRIMARY KEY NOT NULL,
    n     INTEGER NOT NULL CHECK (n >= 0)
) WITHOUT ROWID;

INSERT INTO queue_completed (queue, n)
    SELECT queue, COUNT(*) FROM jobs WHERE state = 'completed' GROUP BY queue;

DROP INDEX jobs_resting;
CREATE INDEX jobs_resting ON jobs (queue, state)
    WHERE state = 'scheduled' OR state = 'retryable' OR state = 'dead' OR state = 'cancelled';
