/**
 * The real callpush server for the HarmonyOS flow tests: `callpush-dev emulate` (the Push Kit v3
 * emulator, which verifies every request as Push Kit does) and `callpush serve` sending to it
 * through its real Push Kit sender, both child processes on loopback with their own temporary
 * directory, SQLite database, HS256 device-token secret and API key.
 *
 * The test plays the app backend (`ring`, `cancel`, `call` with the API key); the fake device's
 * Push Kit (`pushKitDevice.follow`) turns what the emulator accepted into `receiveMessage('VoIP')`
 * deliveries and system notifications. Device bearer tokens come from `callpush token`.
 *
 * The binaries are `$CALLPUSH_BIN`, else `target/debug/callpush`, and `$CALLPUSH_DEV_BIN`, else
 * `target/debug/callpush-dev`, of the workspace the tests run in.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

/** The workspace root: the nearest directory up from here or the working directory with a `[workspace]` Cargo.toml. */
function workspaceRoot(): string {
  // `__dirname` exists when the tests run as CommonJS only.
  const starts = typeof __dirname === 'string' ? [process.cwd(), __dirname] : [process.cwd()];
  for (const start of starts) {
    let dir = path.resolve(start);
    for (;;) {
      const manifest = path.join(dir, 'Cargo.toml');
      if (fs.existsSync(manifest) && fs.readFileSync(manifest, 'utf8').includes('[workspace]')) return dir;
      const up = path.dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  throw new Error('no cargo workspace above the tests; set CALLPUSH_BIN');
}

/**
 * A binary of the workspace: `$<variable>`, else the workspace's `target/debug/<name>` (which
 * bindings-ets/tests/run.sh builds first), built with `cargo build -p <pkg>` if missing.
 */
function workspaceBinary(variable: string, pkg: string, name: string): string {
  const given = process.env[variable];
  if (given !== undefined && given.length > 0) {
    if (!fs.existsSync(given)) throw new Error(`${variable}=${given} does not exist`);
    return given;
  }
  const root = workspaceRoot();
  const bin = path.join(root, 'target', 'debug', name);
  if (!fs.existsSync(bin)) {
    const cargo = spawnSync('cargo', ['build', '--quiet', '--locked', '-p', pkg, '--bin', name],
      { cwd: root, encoding: 'utf8', stdio: ['ignore', 'inherit', 'pipe'] });
    if (cargo.status !== 0) throw new Error(`cargo build -p ${pkg} failed:\n${cargo.stderr}`);
  }
  return bin;
}

/** The server, `callpush`: `$CALLPUSH_BIN`, else `target/debug/callpush`. */
export function callpushBinary(): string {
  return workspaceBinary('CALLPUSH_BIN', 'callpush-server', 'callpush');
}

/** The developer commands, `callpush-dev` (its `emulate`): `$CALLPUSH_DEV_BIN`, else `target/debug/callpush-dev`. */
export function callpushDevBinary(): string {
  return workspaceBinary('CALLPUSH_DEV_BIN', 'callpush-dev', 'callpush-dev');
}

/** A TOML basic string. */
function toml(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** Only `CALLPUSH_LOG` of the environment: other `CALLPUSH_*` variables would override the configuration. */
function scrubbedEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CALLPUSH_')) env[k] = v;
  env.CALLPUSH_LOG = 'warn';
  return env;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A call as `GET /v1/calls/{id}` answers it (the parts the tests read). */
export interface CallStatus {
  call_id: string;
  state: string;
  reason?: string;
  answered_by?: string;
  [key: string]: unknown;
}

/** A request the Push Kit emulator received. */
export interface PushKitRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  status: number;
}

/** `callpush-dev emulate` + `callpush serve`, for one test file. */
export class CallpushServer {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'callpush-ets-server-'));
  readonly apiKey = `ets-test-backend-key-${crypto.randomBytes(8).toString('hex')}`;
  /** Base URL of `callpush serve`. */
  url = '';
  /** Base URL of the Push Kit emulator. */
  pushKitUrl = '';
  private emulator: ChildProcess | undefined;
  private server: ChildProcess | undefined;
  private readonly secret = crypto.randomBytes(32).toString('base64url');
  private readonly tokens = new Map<string, string>();
  private readonly logFile = path.join(this.dir, 'server.log');
  private readonly config = path.join(this.dir, 'callpush.toml');

  /** Kills the children if the test process ends without `close` (a failed hook, a crash). */
  private readonly onExit = (): void => {
    this.emulator?.kill('SIGKILL');
    this.server?.kill('SIGKILL');
  };

  /** Starts both processes and waits until the server is healthy. */
  async start(): Promise<void> {
    process.once('exit', this.onExit);
    const bin = callpushBinary();
    const emuDir = path.join(this.dir, 'emulators');
    this.emulator = spawn(callpushDevBinary(), ['emulate', '--dir', emuDir], { env: scrubbedEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    this.pushKitUrl = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`callpush-dev emulate printed no Push Kit URL: ${out}`)), 30_000);
      this.emulator?.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8');
        const found = /^Push Kit\s+(http:\/\/\S+)/m.exec(out);
        if (found !== null) {
          clearTimeout(timer);
          resolve(found[1]);
        }
      });
      this.emulator?.once('exit', (code) => reject(new Error(`callpush-dev emulate exited with ${code}: ${out}`)));
    });
    for (let attempt = 0; ; attempt += 1) {
      const port = await freePort();
      this.url = `http://127.0.0.1:${port}`;
      fs.writeFileSync(this.config, [
        `listen = "127.0.0.1:${port}"`,
        `database_url = ${toml(`sqlite://${path.join(this.dir, 'callpush.db')}`)}`,
        'database_connections = 4',
        `data_dir = ${toml(this.dir)}`,
        `api_keys = [${toml(this.apiKey)}]`,
        '',
        '[auth]',
        `hs256_secret = ${toml(this.secret)}`,
        '',
        '[ring]',
        'default_ring_seconds = 30',
        'max_ring_seconds = 120',
        'concurrency = 8',
        'claim_batch = 16',
        '',
        '[sender]',
        'kind = "file"',
        `path = ${toml(path.join(this.dir, 'other-pushes.jsonl'))}`,
        '',
        '[providers.harmony]',
        `service_account_file = ${toml(path.join(emuDir, 'harmony-service-account.json'))}`,
        `base_url = ${toml(this.pushKitUrl)}`,
        '',
      ].join('\n'));
      const log = fs.openSync(this.logFile, 'a');
      this.server = spawn(bin, ['serve', '--config', this.config], { env: scrubbedEnv(), stdio: ['ignore', log, log], cwd: this.dir });
      fs.closeSync(log);
      if (await this.healthy()) return;
      this.stopServer();
      if (attempt >= 4 || !this.log().includes('listening on')) throw new Error(`callpush serve did not start:\n${this.log()}`);
    }
  }

  private async healthy(): Promise<boolean> {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && this.server?.exitCode === null) {
      try {
        const response = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(1000) });
        if (response.status === 200) return true;
      } catch {
        // Not listening yet.
      }
      await sleep(25);
    }
    return false;
  }

  /** What the server logged (warnings and errors). */
  log(): string {
    return fs.existsSync(this.logFile) ? fs.readFileSync(this.logFile, 'utf8') : '';
  }

  private stopServer(): void {
    this.server?.kill('SIGKILL');
    this.server = undefined;
  }

  /** Kills both processes and deletes the directory. */
  async close(): Promise<void> {
    process.removeListener('exit', this.onExit);
    const logged = this.log();
    this.stopServer();
    this.emulator?.kill('SIGKILL');
    this.emulator = undefined;
    if (logged.trim().length > 0) process.stderr.write(`---- callpush serve logged:\n${logged}----\n`);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** A device bearer token for `user`, minted by `callpush token` with this server's configuration. */
  token(user: string): string {
    const known = this.tokens.get(user);
    if (known !== undefined) return known;
    const minted = spawnSync(callpushBinary(), ['token', '--config', this.config, '--user', user], { env: scrubbedEnv(), encoding: 'utf8' });
    const token = minted.stdout.trim();
    if (minted.status !== 0 || token.length === 0) throw new Error(`callpush token --user ${user} failed: ${minted.stderr}`);
    this.tokens.set(user, token);
    return token;
  }

  /**
   * Another device of `user`, registered over the device API as its app would
   * (`PUT /v1/installations/{id}` with a Push Kit token nobody listens to).
   */
  async registerOtherDevice(user: string, installationId: string): Promise<void> {
    await this.device('PUT', `/v1/installations/${installationId}`, user,
      { platform: 'harmony', token: `MAMzLgOther${crypto.randomBytes(12).toString('hex')}`, ttl_seconds: 3600 });
  }

  /** That other device answers `callId` (`POST /v1/calls/{id}/answer`). */
  async answerOnOtherDevice(user: string, installationId: string, callId: string): Promise<void> {
    await this.device('POST', `/v1/calls/${callId}/answer`, user, { installation_id: installationId });
  }

  private async device(method: string, route: string, user: string, body: unknown): Promise<void> {
    const response = await fetch(`${this.url}${route}`, {
      method,
      headers: { Authorization: `Bearer ${this.token(user)}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    if (response.status !== 200) throw new Error(`${method} ${route} answered ${response.status}: ${await response.text()}`);
  }

  /** `POST /v1/calls`: rings every live installation of `to`; returns the installation ids rung. */
  async ring(callId: string, options: { to?: string; ringSeconds?: number; fromName?: string; video?: boolean } = {}): Promise<string[]> {
    const body: Record<string, unknown> = {
      call_id: callId,
      from: { id: 'alice', name: options.fromName ?? 'Alice Ødegård' },
      to: [options.to ?? 'bob'],
      video: options.video ?? true,
      data: { room: 'r-1' },
    };
    if (options.ringSeconds !== undefined) body.ring_seconds = options.ringSeconds;
    const created = await this.backend('POST', '/v1/calls', body, 202) as { deliveries: { installation_id: string }[] };
    return created.deliveries.map((d) => d.installation_id);
  }

  /** `POST /v1/calls/{id}/cancel`: the caller hung up. */
  async cancel(callId: string): Promise<void> {
    await this.backend('POST', `/v1/calls/${callId}/cancel`, {}, 200);
  }

  /** `GET /v1/calls/{id}` with the API key. */
  async call(callId: string): Promise<CallStatus> {
    return await this.backend('GET', `/v1/calls/${callId}`, undefined, 200) as CallStatus;
  }

  /** Waits until the server has `callId` in `state`. */
  async awaitCallState(callId: string, state: string, timeoutMs = 10_000): Promise<CallStatus> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const call = await this.call(callId);
      if (call.state === state) return call;
      if (Date.now() > deadline) throw new Error(`${callId} is still ${call.state}, not ${state}: ${JSON.stringify(call)}`);
      await sleep(50);
    }
  }

  /** Every request the Push Kit emulator received, oldest first. */
  async pushKitRequests(): Promise<PushKitRequest[]> {
    const response = await fetch(`${this.pushKitUrl}/_emulator/requests`);
    return await response.json() as PushKitRequest[];
  }

  /** Waits for an accepted Push Kit request of `pushType` whose body contains `needle`. */
  async awaitPushKitRequest(pushType: string, needle: string, timeoutMs = 10_000): Promise<PushKitRequest> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = (await this.pushKitRequests()).find((r) => r.headers['push-type'] === pushType && r.body.includes(needle));
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`no push-type ${pushType} request with ${needle} within ${timeoutMs} ms\n${this.log()}`);
      await sleep(25);
    }
  }

  private async backend(method: string, route: string, body: unknown, expect: number): Promise<unknown> {
    const response = await fetch(`${this.url}${route}`, {
      method,
      headers: { Authorization: `Bearer ${this.apiKey}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    if (response.status !== expect) throw new Error(`${method} ${route} answered ${response.status}, not ${expect}: ${text}\n${this.log()}`);
    return JSON.parse(text) as unknown;
  }
}
