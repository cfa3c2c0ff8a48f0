// What the HAR declares for the app it is merged into (callpush/src/main/module.json5), and what
// bindings-ets/README.md must tell app developers because no code of the HAR can do it for them.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ets = process.env.CALLPUSH_ETS_ROOT ?? path.resolve(__dirname, '../../../../../bindings-ets');

interface ModuleJson {
  module: { type: string; deviceTypes: string[]; requestPermissions: { name: string }[] };
}

/** module.json5 as JSON: its `//` comments dropped (none of its strings holds `//`). */
function moduleJson(): ModuleJson {
  const text = fs.readFileSync(path.join(ets, 'callpush/src/main/module.json5'), 'utf8');
  return JSON.parse(text.replace(/^\s*\/\/.*$/gm, '').replace(/,(\s*[}\]])/g, '$1')) as ModuleJson;
}

test('the HAR asks for what its glue calls need: the network, and the vibrator for ringing', () => {
  const module = moduleJson().module;
  assert.equal(module.type, 'har');
  assert.deepEqual(module.requestPermissions.map((p) => p.name).sort(), ['ohos.permission.INTERNET', 'ohos.permission.VIBRATE']);
});

test('the HAR declares the device types a Stage-model HAR serves; Lite Wearable is documented instead', () => {
  // In-app call messages reach phones, tablets and, from HarmonyOS 6.1.0(23), Lite Wearables;
  // Lite Wearable apps are FA-model JS apps (config.json) that cannot load this HAR.
  assert.deepEqual(moduleJson().module.deviceTypes, ['phone', 'tablet']);
  const readme = fs.readFileSync(path.join(ets, 'README.md'), 'utf8');
  assert.ok(/Lite Wearable[^]*6\.1\.0\(23\)/.test(readme), 'README.md does not say where Lite Wearables stand');
  assert.ok(readme.includes('"liteWearable"'), 'README.md does not name the Lite Wearable device type');
});

test('the README tells developers what only their app can do', () => {
  const readme = fs.readFileSync(path.join(ets, 'README.md'), 'utf8');
  const musts: [RegExp, string][] = [
    [/entity\.system\.home[^]*ohos\.want\.action\.home[^]*uris/, 'the home skill without uris, for the missed-call tap'],
    [/requestNotificationPermission: false/, 'asking for notifications themselves'],
    [/ringer: false/, 'leaving ringing to the app'],
    [/resources\/rawfile/, 'where the ringtone goes'],
    [/https:\/\/<server>\/v1\/receipts\/harmony/, 'the receipt URL for AppGallery Connect'],
    [/\[providers\.harmony\.receipts\]/, 'the receipts section of the server configuration'],
    [/longPollSeconds: 0/, 'the long-poll off for apps that signal calls themselves'],
    [/100 KB[^]*32 vp/, 'the caller picture rules'],
  ];
  for (const [pattern, what] of musts) assert.ok(pattern.test(readme), `README.md does not explain ${what}`);
});
