-- Claims follow the instance that holds them: `claimed_by` names it, and its heartbeat keeps
-- `claimed_until` a few seconds ahead while it lives. A dead instance's claims lapse within one
-- lease and any instance takes them over.
ALTER TABLE deliveries ADD COLUMN claimed_by TEXT;
CREATE INDEX deliveries_by_claimer ON deliveries (claimed_by, status);
