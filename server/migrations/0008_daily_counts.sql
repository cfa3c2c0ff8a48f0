-- Counters per UTC day (`day`: days since 1970-01-01), shared by every instance: Push Kit test
-- messages per project, counted before they are sent so a limit holds across instances.
CREATE TABLE daily_counts (
    counter TEXT NOT NULL,
    day     BIGINT NOT NULL,
    n       BIGINT NOT NULL,
    PRIMARY KEY (counter, day)
);
