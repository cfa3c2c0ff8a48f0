-- Whether the app's notifications are enabled on the device: NULL unknown, 0 off, 1 on.
-- `notifications_source` says who told (`device`: the SDK's report; `push_kit_receipt`: a Push
-- Kit receipt with result 6), `notifications_at` when that was true (ms). A report older than
-- the one stored changes nothing.
ALTER TABLE installations ADD COLUMN notifications_enabled BIGINT;
ALTER TABLE installations ADD COLUMN notifications_source TEXT;
ALTER TABLE installations ADD COLUMN notifications_at BIGINT;
