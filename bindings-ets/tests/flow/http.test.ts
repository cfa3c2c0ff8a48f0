/**
 * `NetworkHttpClient` (the HAR's HttpClient on @kit.NetworkKit http) against a local HTTP server:
 * what it sends, what it returns, and how transport failures become the typed `HttpError`s the
 * core retries on.
 */
import { strict as assert } from 'node:assert';
import * as nodeHttp from 'node:http';
import { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { httpStats } from '@kit.NetworkKit';
import { HttpErrorNetwork, HttpErrorTimeout, HttpRequest, NetworkHttpClient } from '../../callpush/Index';

class Seen {
  constructor(readonly method: string, readonly url: string, readonly headers: nodeHttp.IncomingHttpHeaders, readonly body: Buffer) {}
}

describe('NetworkHttpClient', { timeout: 60_000 }, () => {
  const seen: Seen[] = [];
  let base = '';
  const server = nodeHttp.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push(new Seen(req.method ?? '', req.url ?? '', req.headers, Buffer.concat(chunks)));
      if (req.url === '/stall') return; // never answers
      if (req.url === '/empty') {
        res.writeHead(204, { 'X-Request-Id': 'r-1' });
        res.end();
        return;
      }
      res.writeHead(409, { 'Content-Type': 'application/json', 'Retry-After': '3' });
      res.end(JSON.stringify({ error: { code: 'installation_taken', message: 'Ødegård' } }));
    });
  });

  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('sends method, headers and body, and returns any status with its headers and body', async () => {
    const body = new TextEncoder().encode('{"platform":"harmony"}');
    const headers = new Map<string, string>([['Authorization', 'Bearer t'], ['Content-Type', 'application/json']]);
    const sentBefore = httpStats.sent;
    const response = await new NetworkHttpClient().send(new HttpRequest('PUT', `${base}/v1/installations/i-1`, headers, body, 5000));
    assert.equal(response.status, 409);
    assert.equal(response.headers.get('retry-after'), '3');
    assert.deepEqual(JSON.parse(new TextDecoder().decode(response.body)), { error: { code: 'installation_taken', message: 'Ødegård' } });
    const request = seen[seen.length - 1];
    assert.equal(request.method, 'PUT');
    assert.equal(request.url, '/v1/installations/i-1');
    assert.equal(request.headers.authorization, 'Bearer t');
    assert.equal(request.body.toString('utf8'), '{"platform":"harmony"}');
    assert.equal(httpStats.sent, sentBefore + 1);
    assert.equal(httpStats.usingCache[httpStats.usingCache.length - 1], false, 'the cache is off');
    assert.equal(httpStats.live, 0, 'the task was destroyed');
  });

  it('returns an empty body for 204 and sends no body for GET and DELETE', async () => {
    const response = await new NetworkHttpClient().send(new HttpRequest('DELETE', `${base}/empty`, new Map<string, string>(), undefined, 5000));
    assert.equal(response.status, 204);
    assert.equal(response.body.length, 0);
    assert.equal(response.headers.get('x-request-id'), 'r-1');
    assert.equal(seen[seen.length - 1].body.length, 0);
  });

  it('a request past its timeout fails with HttpErrorTimeout', async () => {
    const started = Date.now();
    await assert.rejects(
      new NetworkHttpClient().send(new HttpRequest('GET', `${base}/stall`, new Map<string, string>(), undefined, 300)),
      (e: Error) => e instanceof HttpErrorTimeout && e.message.includes('2300028'));
    assert.ok(Date.now() - started < 3000);
    assert.equal(httpStats.live, 0);
  });

  it('a refused connection fails with HttpErrorNetwork', async () => {
    const closed = nodeHttp.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await assert.rejects(
      new NetworkHttpClient().send(new HttpRequest('GET', `http://127.0.0.1:${port}/`, new Map<string, string>(), undefined, 2000)),
      (e: Error) => e instanceof HttpErrorNetwork && e.message.includes('2300007'));
  });

  it('refuses a method NetworkKit cannot send', async () => {
    await assert.rejects(
      new NetworkHttpClient().send(new HttpRequest('PATCH', `${base}/`, new Map<string, string>(), undefined, 1000)),
      (e: Error) => e instanceof HttpErrorNetwork);
  });
});
