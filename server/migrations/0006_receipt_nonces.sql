-- Push Kit delivery receipts: the nonce of every signed receipt request accepted, until its
-- timestamp is too old to pass the skew check anyway (`expires_at`, ms). A nonce seen again
-- before then is a replay and refused, by whichever instance it reaches.
CREATE TABLE receipt_nonces (
    nonce      TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX receipt_nonces_by_expiry ON receipt_nonces (expires_at);
