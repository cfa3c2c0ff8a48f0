-- Wire v2: the installation's public X25519 device key, to which every push to it is
-- encrypted. `device_key` is the 32-byte public key as base64url without padding (the JWK's
-- `x`), `device_key_id` its RFC 7638 thumbprint (what the lease answers and sealed pushes name
-- in `kid`). NULL: the installation registered no key and gets wire v1 pushes. A pending
-- (unverified) registration carries its key in the same row: its verify push is sealed too.
ALTER TABLE installations ADD COLUMN device_key TEXT;
ALTER TABLE installations ADD COLUMN device_key_id TEXT;

-- The key a delivery is sealed to, copied from its installation when the delivery is made (as
-- its token is): NULL for a wire v1 installation.
ALTER TABLE deliveries ADD COLUMN device_key TEXT;
