-- Topics' subscriptions and cron schedules, in step with
-- crates/store-sqlite/migrations/0002_topics_and_schedules.sql.

-- A topic exists while it has a subscription. A subscription delivers each published event to
-- a queue (`queue`) or to a webhook (`url`, signed with `secret`, and with `previous_secret`
-- too until `previous_secret_until` after a rotation). Publishing reads a topic's rows by the
-- primary key's prefix.
CREATE TABLE buzzer_subscriptions (
    topic                 text        NOT NULL,
    name                  text        NOT NULL,
    kind                  text        NOT NULL CHECK (kind IN ('queue', 'webhook')),
    queue                 text,
    url                   text,
    secret                text,
    previous_secret       text,
    previous_secret_until timestamptz,
    filter                jsonb,      -- NULL = every event
    disabled              boolean     NOT NULL DEFAULT false,
    disabled_reason       text,
    -- Delivery health of a webhook, updated after every attempt.
    last_status           integer,
    last_attempt_at       timestamptz,
    last_success_at       timestamptz,
    failures_in_row       integer     NOT NULL DEFAULT 0,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    PRIMARY KEY (topic, name),
    CHECK ((kind = 'queue') = (queue IS NOT NULL)),
    CHECK ((kind = 'webhook') = (url IS NOT NULL AND secret IS NOT NULL))
);

-- `last_tick` only moves forward (a compare-and-set under the row lock), so of two nodes that
-- briefly both lead, exactly one claims each tick.
CREATE TABLE buzzer_schedules (
    name       text        PRIMARY KEY,
    cron       text        NOT NULL,
    timezone   text        NOT NULL,
    queue      text        NOT NULL,
    payload    json        NOT NULL,   -- json keeps the client's bytes
    options    jsonb,                  -- job options (priority, tags, …); NULL = defaults
    last_tick  timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
