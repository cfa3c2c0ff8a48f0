-- Installation ids are scoped per user: an installation is (user_id, installation_id), so two
-- users may use the same id and neither can learn anything about the other's installations.
-- Rebuilt as new table, copy, drop, rename (SQLite cannot change a primary key in place).
--
-- A registration naming a push token another user's live installation holds waits for proof
-- that the device holds the token: `verify_nonce` is the SHA-256 (hex) of the nonce the server
-- pushed to the token, `verify_expires_at` when that nonce expires (ms). An installation with a
-- `verify_nonce` is never rung; once the device answers, the column is cleared and the token
-- moves (the other installation is removed and the move recorded in `token_moves`).
CREATE TABLE installations_owned (
    user_id           TEXT NOT NULL,
    installation_id   TEXT NOT NULL,
    platform          TEXT NOT NULL,
    token             TEXT NOT NULL,
    apns_environment  TEXT,
    app_id            TEXT,
    ttl_seconds       BIGINT NOT NULL,
    registered_at     BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    alert_token       TEXT,
    verify_nonce      TEXT,
    verify_expires_at BIGINT,
    PRIMARY KEY (user_id, installation_id)
);
INSERT INTO installations_owned (user_id, installation_id, platform, token, apns_environment, app_id,
                                 ttl_seconds, registered_at, expires_at, alert_token)
    SELECT user_id, installation_id, platform, token, apns_environment, app_id,
           ttl_seconds, registered_at, expires_at, alert_token
    FROM installations;
DROP TABLE installations;
ALTER TABLE installations_owned RENAME TO installations;
CREATE INDEX installations_by_user ON installations (user_id, expires_at);
CREATE INDEX installations_by_token ON installations (platform, token);
CREATE INDEX installations_by_expiry ON installations (expires_at);
CREATE INDEX installations_by_alert_token ON installations (platform, alert_token);

-- Every push token that moved from one user's installation to another's after the device
-- proved it holds it. Tokens are kept redacted (their first six characters and length).
CREATE TABLE token_moves (
    move_id           TEXT PRIMARY KEY,
    moved_at          BIGINT NOT NULL,
    platform          TEXT NOT NULL,
    token             TEXT NOT NULL,
    from_user_id      TEXT NOT NULL,
    from_installation TEXT NOT NULL,
    to_user_id        TEXT NOT NULL,
    to_installation   TEXT NOT NULL
);
CREATE INDEX token_moves_by_time ON token_moves (moved_at);
