-- callpush-server schema. Portable between SQLite and PostgreSQL: TEXT and BIGINT only.
-- Times are unix milliseconds unless a column says seconds.

-- A device's push registration. One live installation per (platform, token).
CREATE TABLE installations (
    installation_id  TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL,
    platform         TEXT NOT NULL,
    token            TEXT NOT NULL,
    apns_environment TEXT,
    app_id           TEXT,
    ttl_seconds      BIGINT NOT NULL,
    registered_at    BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL
);
CREATE INDEX installations_by_user ON installations (user_id, expires_at);
CREATE INDEX installations_by_token ON installations (platform, token);
CREATE INDEX installations_by_expiry ON installations (expires_at);

-- A call in its ringing phase. `version` grows on every change; long-polls wait on it.
CREATE TABLE calls (
    call_id     TEXT PRIMARY KEY,
    caller_id   TEXT NOT NULL,
    caller_name TEXT,
    video       BIGINT NOT NULL,
    data        TEXT NOT NULL,
    state       TEXT NOT NULL,
    reason      TEXT,
    answered_by TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    ended_at    BIGINT,
    version     BIGINT NOT NULL
);
CREATE INDEX calls_ringing_by_expiry ON calls (state, expires_at);

-- Who a call rings. A callee who declined on one device is declined for the whole call.
CREATE TABLE call_callees (
    call_id     TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    declined_at BIGINT,
    PRIMARY KEY (call_id, user_id)
);
CREATE INDEX call_callees_by_user ON call_callees (user_id);

-- One push to one device: stored before it is sent, claimed by a worker, retried until done.
CREATE TABLE deliveries (
    delivery_id      TEXT PRIMARY KEY,
    call_id          TEXT NOT NULL,
    installation_id  TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    platform         TEXT NOT NULL,
    token            TEXT NOT NULL,
    apns_environment TEXT,
    registered_at    BIGINT NOT NULL,
    kind             TEXT NOT NULL,
    reason           TEXT,
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    claimed_until    BIGINT,
    outcome          TEXT,
    detail           TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_by_call ON deliveries (call_id);

-- The timeline of a call: state changes and every delivery attempt.
CREATE TABLE call_events (
    event_id    TEXT PRIMARY KEY,
    call_id     TEXT NOT NULL,
    delivery_id TEXT,
    at          BIGINT NOT NULL,
    event       TEXT NOT NULL,
    detail      TEXT
);
CREATE INDEX call_events_by_call ON call_events (call_id, at);

-- The Ed25519 keys call pushes are signed with. The newest key whose `activates_at` has come
-- signs. A key is published before it activates (devices learn it when they renew) and after
-- its successor activates (until no push it signed can still be live).
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    seed         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    activates_at BIGINT NOT NULL
);

-- Webhooks waiting to be delivered; written in the transaction of the change they report.
CREATE TABLE webhook_outbox (
    webhook_id      TEXT PRIMARY KEY,
    call_id         TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claimed_until   BIGINT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (status, next_attempt_at);
