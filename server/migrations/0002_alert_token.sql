-- APNs: the regular device token (registerForRemoteNotifications) for the missed-call alert.
-- The installation's `token` is the PushKit VoIP token, which APNs refuses alerts for
-- (400 DeviceTokenNotForTopic). NULL: no alert token, so no missed-call push.
ALTER TABLE installations ADD COLUMN alert_token TEXT;
CREATE INDEX installations_by_alert_token ON installations (platform, alert_token);
