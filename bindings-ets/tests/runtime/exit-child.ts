// Run by exit.test.ts as its own process: rings a call, so a Rust thread keeps long-polling
// through the ArkTS HttpClient (every poll a call from a Rust thread into JS), then exits the
// process in the middle of that (after destroying the client first, when told to). The host tears the JS environment down while Rust threads are
// still calling into it; the bridge must let the process end cleanly.
import { Client, ClientConfig, Platform } from '../../callpush/src/main/ets/generated/callpush';
import { Events, FakeCallUi, FakeRegistrar, FakeTokens, Signer, USER, tempDir } from './support';

const signer = new Signer();
const http = new FakeRegistrar(signer);
http.calls.set('call-at-exit', { state: 'ringing' });
http.delayMs = () => 0;
const config = new ClientConfig('https://calls.example.com', tempDir(), Platform.HARMONY, undefined, signer.keysJson(), USER);
const client = new Client(config, http, new FakeTokens(), new FakeCallUi(), new Events());
client.handlePush(signer.harmonyRing('call-at-exit', { ringSeconds: 60 }));
const exitAfterMs = Number(process.argv[2] ?? '20');
const started = Date.now();
const waitForThePoll = setInterval(() => {
  if (http.requests.length > 0) {
    clearInterval(waitForThePoll);
    setTimeout(() => {
      if (process.argv[3] === 'destroy') {
        http.closed = true;
        client.destroy();
      }
      process.exit(0);
    }, exitAfterMs);
  } else if (Date.now() - started > 5_000) {
    process.exit(3); // the long-poll never started: the test would prove nothing
  }
}, 1);
