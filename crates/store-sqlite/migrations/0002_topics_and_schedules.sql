-- Topics' subscriptions and cron schedules. Times are integer milliseconds since the Unix
-- epoch, as in 0001.

-- A topic exists while it has a subscription. A subscription delivers each published event to
-- a queue (`queue`) or to a webhook (`url`, signed with `secret`, and with `previous_secret`
-- too until `previous_secret_until` after a rotation).
CREATE TABLE subscriptions (
    topic                 TEXT    NOT NULL,
    name                  TEXT    NOT NULL,
    kind                  TEXT    NOT NULL CHECK (kind IN ('queue', 'webhook')),
    queue                 TEXT,
    url                   TEXT,
    secret                TEXT,
    previous_secret       TEXT,
    previous_secret_until INTEGER,
    filter                TEXT,    -- JSON object; NULL = every event
    disabled              INTEGER NOT NULL DEFAULT 0,
    disabled_reason       TEXT,
    -- Delivery health of a webhook, updated after every attempt.
    last_status           INTEGER,
    last_attempt_at       INTEGER,
    last_success_at       INTEGER,
    failures_in_row       INTEGER NOT NULL DEFAULT 0,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    PRIMARY KEY (topic, name),
    CHECK ((kind = 'queue') = (queue IS NOT NULL)),
    CHECK ((kind = 'webhook') = (url IS NOT NULL AND secret IS NOT NULL))
) WITHOUT ROWID;

-- `last_tick` only moves forward (a compare-and-set), so each tick is claimed once.
CREATE TABLE schedules (
    name       TEXT    PRIMARY KEY NOT NULL,
    cron       TEXT    NOT NULL,
    timezone   TEXT    NOT NULL,
    queue      TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    options    TEXT,   -- JSON object of job options (priority, tags, …); NULL = defaults
    last_tick  INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
