-- Keyed publishes: a repeat of (topic, idempotency_key) answers the first event instead of
-- publishing again, until the pruner forgets the key (after the finished-job retention).
CREATE TABLE topic_events (
    topic           TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL,
    event_id        TEXT    NOT NULL,
    deliveries      INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (topic, idempotency_key)
) WITHOUT ROWID;

CREATE INDEX topic_events_prune ON topic_events (created_at);
