-- One row the health checks write to: a committed write proves the database takes writes now.
CREATE TABLE health (
    id        BIGINT PRIMARY KEY,
    probed_at BIGINT NOT NULL
);
INSERT INTO health (id, probed_at) VALUES (1, 0);
