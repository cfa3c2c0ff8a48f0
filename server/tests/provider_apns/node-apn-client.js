// Sends a VoIP push, a missed-call alert and a push to a sandbox-only token through
// @parse/node-apn, an APNs client written independently of callpush, to the callpush APNs
// emulator; prints what the client made of each answer as one JSON line.
//
// Environment: APNS_ADDRESS and APNS_PORT (the emulator's production endpoint), APNS_CA_FILE,
// APNS_KEY_FILE, APNS_KEY_ID, APNS_TEAM_ID, APNS_BUNDLE_ID, APNS_TOKEN, APNS_SANDBOX_TOKEN.
'use strict';

const fs = require('fs');
const apn = require('@parse/node-apn');

const env = process.env;

async function main() {
  const provider = new apn.Provider({
    token: { key: env.APNS_KEY_FILE, keyId: env.APNS_KEY_ID, teamId: env.APNS_TEAM_ID },
    production: true,
    address: env.APNS_ADDRESS,
    port: Number(env.APNS_PORT),
    ca: [fs.readFileSync(env.APNS_CA_FILE)],
    requestTimeout: 5000,
  });

  const voip = new apn.Notification();
  voip.topic = `${env.APNS_BUNDLE_ID}.voip`;
  voip.pushType = 'voip';
  voip.priority = 10;
  voip.expiry = Math.floor(Date.now() / 1000) + 30;
  voip.rawPayload = { callpush: 'eyJhbGciOiJFZERTQSJ9.e30.c2ln' };

  const alert = new apn.Notification();
  alert.topic = env.APNS_BUNDLE_ID;
  alert.pushType = 'alert';
  alert.priority = 10;
  alert.collapseId = 'missed-node-apn';
  alert.alert = { title: 'Missed call', body: 'Alice called' };
  alert.sound = 'default';
  alert.aps.category = 'MISSED_CALL';

  const results = {};
  for (const [name, note, token] of [
    ['voip', voip, env.APNS_TOKEN],
    ['alert', alert, env.APNS_TOKEN],
    ['sandbox_token_in_production', voip, env.APNS_SANDBOX_TOKEN],
  ]) {
    const result = await provider.send(note, token);
    results[name] = {
      sent: result.sent.length,
      failed: result.failed.map(f => ({
        status: f.status === undefined ? null : Number(f.status),
        reason: f.response ? f.response.reason : String(f.error),
      })),
    };
  }
  await provider.shutdown();
  console.log(JSON.stringify(results));
}

main().catch(error => {
  console.error(error);
  process.exit(1);
});
