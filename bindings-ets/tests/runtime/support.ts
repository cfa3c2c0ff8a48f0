/**
 * Fakes for the runtime tests: an in-memory registrar behind an ArkTS-side HttpClient, token
 * providers, a recording SystemCallUi and CallListener, and signed pushes made with node:crypto.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import {
  AccessTokenErrorUnavailable,
  AccessTokenProvider,
  Call,
  CallEvent,
  CallListener,
  CallUiErrorRefused,
  HttpClient,
  HttpErrorNetwork,
  HttpRequest,
  HttpResponse,
  IncomingCallError,
  SystemCallUi,
} from '../../callpush/src/main/ets/generated/callpush';

export const USER = 'user-bob';

/** Polls `check` every 5 ms until it returns a value, or fails after `timeoutMs`. */
export async function until<T>(what: string, check: () => T | undefined, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'callpush-ets-'));
}

/** The server's signing key and signed call-push JWTs in a HarmonyOS VoIP message. */
export class Signer {
  private readonly key = crypto.generateKeyPairSync('ed25519');
  readonly kid = 'ets-test-key';

  /** The JWK Set to pin. */
  keysJson(): string {
    const jwk = this.key.publicKey.export({ format: 'jwk' });
    return JSON.stringify({ keys: [{ kty: 'OKP', crv: 'Ed25519', x: jwk.x, kid: this.kid, alg: 'EdDSA', use: 'sig' }] });
  }

  /** A HarmonyOS `receiveMessage('VoIP')` payload ringing `callId` for `USER`. */
  harmonyRing(callId: string, options: { name?: string; video?: boolean; ringSeconds?: number } = {}): string {
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: 'callpush-ets-tests',
      aud: USER,
      jti: `msg-${callId}`,
      iat: now,
      exp: now + (options.ringSeconds ?? 30),
      v: 1,
      evt: 'ring',
      cid: callId,
      from: options.name === undefined ? { id: 'user-alice' } : { id: 'user-alice', name: options.name },
      video: options.video ?? false,
    };
    const b64 = (v: object): string => Buffer.from(JSON.stringify(v)).toString('base64url');
    const input = `${b64({ alg: 'EdDSA', kid: this.kid, typ: 'callpush+jwt' })}.${b64(claims)}`;
    const signature = crypto.sign(null, Buffer.from(input), this.key.privateKey).toString('base64url');
    return JSON.stringify({ callId: `sys-${callId}`, data: JSON.stringify({ callpush: `${input}.${signature}` }) });
  }
}

/** What the fake registrar answers for a call's status, by call id. */
export type CallAnswer = { state: string; reason?: string } | 'unknown';

/**
 * The registrar (callpush-server's device API) in memory, behind an ArkTS-style HttpClient that
 * answers asynchronously, as `@kit.NetworkKit` does.
 */
export class FakeRegistrar implements HttpClient {
  readonly requests: HttpRequest[] = [];
  /** Failures to answer with, first first (then normal answers). */
  readonly failures: Error[] = [];
  /** Status answers for `GET /v1/calls/{id}`; calls not listed are unknown (404). */
  readonly calls = new Map<string, CallAnswer>();
  closed = false;
  /** How long each answer takes, milliseconds. */
  delayMs: () => number = () => 1;

  constructor(private readonly signer: Signer) {}

  send(request: HttpRequest): Promise<HttpResponse> {
    this.requests.push(request);
    if (this.closed) {
      return Promise.reject(new HttpErrorNetwork('the test is over'));
    }
    const failure = this.failures.shift();
    if (failure !== undefined) {
      return Promise.reject(failure);
    }
    return new Promise((resolve) => setTimeout(() => resolve(this.answer(request)), this.delayMs()));
  }

  private answer(request: HttpRequest): HttpResponse {
    const url = new URL(request.url);
    const json = (status: number, body: object): HttpResponse =>
      new HttpResponse(status, new Map([['content-type', 'application/json']]), Buffer.from(JSON.stringify(body)));
    const installation = url.pathname.match(/^\/v1\/installations\/([^/]+)$/);
    if (installation !== null && request.method === 'PUT') {
      const body = JSON.parse(Buffer.from(request.body ?? new Uint8Array()).toString('utf8')) as { ttl_seconds: number };
      const now = Math.floor(Date.now() / 1000);
      return json(200, {
        installation_id: installation[1],
        expires_at: now + body.ttl_seconds,
        server_time: now,
        signing_keys: (JSON.parse(this.signer.keysJson()) as { keys: object[] }).keys,
        user_id: USER,
      });
    }
    if (installation !== null && request.method === 'DELETE') {
      return new HttpResponse(204, new Map(), new Uint8Array());
    }
    const call = url.pathname.match(/^\/v1\/calls\/([^/]+)(\/answer|\/decline)?$/);
    if (call !== null) {
      const answer = this.calls.get(call[1]) ?? 'unknown';
      if (answer === 'unknown') return json(404, { error: { code: 'not_found', message: 'no such call' } });
      // A call status as the API answers it (GET /v1/calls/{id}, answer, decline).
      const now = Math.floor(Date.now() / 1000);
      const status = (fields: object): object => ({ call_id: call[1], expires_at: now + 30, server_time: now, ...fields });
      if (call[2] === '/answer') {
        const body = JSON.parse(Buffer.from(request.body ?? new Uint8Array()).toString('utf8')) as { installation_id: string };
        return json(200, status({ state: 'answered', answered_by: body.installation_id }));
      }
      if (call[2] === '/decline') return json(200, status({ state: 'declined' }));
      return json(200, status(answer));
    }
    return json(404, { error: { code: 'not_found', message: `${request.method} ${url.pathname}` } });
  }
}

/** Tokens from memory; `refuse` makes it fail as an app with no signed-in user does. */
export class FakeTokens implements AccessTokenProvider {
  refuse: string | undefined = undefined;
  asked = 0;

  async accessToken(forceRefresh: boolean): Promise<string> {
    this.asked += 1;
    await new Promise((resolve) => setTimeout(resolve, 1));
    if (this.refuse !== undefined) throw new AccessTokenErrorUnavailable(this.refuse);
    return forceRefresh ? 'fresh-token' : 'token';
  }
}

/** One report to the system call UI. */
export interface Report {
  method: string;
  call?: Call;
  reason?: IncomingCallError;
  systemCallId?: string;
}

/** Records every report; `refuse` makes reportIncomingCall fail as voipCall does. */
export class FakeCallUi implements SystemCallUi {
  readonly reports: Report[] = [];
  refuse: string | undefined = undefined;

  reportIncomingCall(call: Call): void {
    this.reports.push({ method: 'reportIncomingCall', call });
    if (this.refuse !== undefined) throw new CallUiErrorRefused(this.refuse);
  }

  reportAndEndCall(call: Call | undefined, reason: IncomingCallError): void {
    this.reports.push({ method: 'reportAndEndCall', call, reason });
  }

  reportIncomingCallError(systemCallId: string | undefined, reason: IncomingCallError): void {
    this.reports.push({ method: 'reportIncomingCallError', systemCallId, reason });
  }

  reportOutgoingCall(call: Call): void {
    this.reports.push({ method: 'reportOutgoingCall', call });
  }

  reportCallState(call: Call): void {
    this.reports.push({ method: 'reportCallState', call });
  }
}

/** Records every event. */
export class Events implements CallListener {
  readonly events: CallEvent[] = [];

  onEvent(event: CallEvent): void {
    this.events.push(event);
  }

  /** The first event of class `kind` matching `match`, waiting for it. */
  async next<T extends CallEvent>(
    kind: abstract new (...args: never[]) => T,
    match: (e: T) => boolean = () => true,
  ): Promise<T> {
    return until(`a ${kind.name}`, () => this.events.find((e): e is T => e instanceof kind && match(e)));
  }
}
