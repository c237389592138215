-- Keyed publishes, in step with crates/store-sqlite/migrations/0003_topic_events.sql: a repeat
-- of (topic, idempotency_key) answers the first event instead of publishing again, until the
-- pruner forgets the key (after the finished-job retention). The primary key serialises
-- concurrent publishes of one key: the second waits for the first to commit, then sees it.
CREATE TABLE buzzer_topic_events (
    topic           text        NOT NULL,
    idempotency_key text        NOT NULL,
    event_id        text        NOT NULL,
    deliveries      integer     NOT NULL,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (topic, idempotency_key)
);

CREATE INDEX buzzer_topic_events_prune ON buzzer_topic_events (created_at);
