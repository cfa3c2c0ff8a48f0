/**
 * Fake of `@kit.NetworkKit` `http`, typed from the SDK declaration (`createHttp()`,
 * `HttpRequest.request(url, options): Promise<HttpResponse>`, `destroy()`), sending real HTTP/1.1
 * with Node's `http` module so the glue talks to a real `callpush serve`.
 *
 * Behaviour kept from the device (libcurl underneath): `connectTimeout` bounds connecting and
 * `readTimeout` the whole transfer (CURLOPT_CONNECTTIMEOUT_MS / CURLOPT_TIMEOUT_MS), both 60 000
 * ms by default; transport failures reject with a BusinessError whose code is 2300000 + the curl
 * code (2300007 cannot connect, 2300028 timeout, 2300052 empty reply, 2300056 receive error);
 * any HTTP status resolves. `extraData` is the body; `expectDataType` ARRAY_BUFFER gives the body
 * as an ArrayBuffer. Calling `request` after `destroy` rejects.
 */
import * as nodeHttp from 'node:http';
import { FakeBusinessError } from './BasicServicesKit';

/** The `http` namespace. */
export namespace http {
  /** Methods. */
  export enum RequestMethod {
    OPTIONS = 'OPTIONS', GET = 'GET', HEAD = 'HEAD', POST = 'POST', PUT = 'PUT', DELETE = 'DELETE', TRACE = 'TRACE', CONNECT = 'CONNECT',
  }
  /** How `result` is given. */
  export enum HttpDataType { STRING = 0, OBJECT = 1, ARRAY_BUFFER = 2 }
  /** Common status codes. */
  export enum ResponseCode { OK = 200, CREATED = 201, ACCEPTED = 202, NO_CONTENT = 204, BAD_REQUEST = 400, UNAUTHORIZED = 401, NOT_FOUND = 404, CONFLICT = 409, INTERNAL_ERROR = 500 }
  /** HTTP versions. */
  export enum HttpProtocol { HTTP1_1 = 0, HTTP2 = 1, HTTP3 = 2 }
  /** Options of one request. */
  export interface HttpRequestOptions {
    /** The method (GET by default). */
    method?: RequestMethod;
    /** The body. */
    extraData?: string | Object | ArrayBuffer;
    /** How to give the response body. */
    expectDataType?: HttpDataType;
    /** Whether responses may be cached (true by default). */
    usingCache?: boolean;
    /** Request headers. */
    header?: Object;
    /** Whole-transfer timeout, ms. */
    readTimeout?: number;
    /** Connect timeout, ms. */
    connectTimeout?: number;
    /** HTTP version. */
    usingProtocol?: HttpProtocol;
  }
  /** The answer. */
  export interface HttpResponse {
    /** The body. */
    result: string | Object | ArrayBuffer;
    /** How `result` is given. */
    resultType: HttpDataType;
    /** The status. */
    responseCode: ResponseCode | number;
    /** Response headers (lowercase names). */
    header: Object;
    /** Cookies. */
    cookies: string;
  }
  /** One HTTP task; make one per request and destroy it after. */
  export interface HttpRequest {
    /** Sends a request. */
    request(url: string, options?: HttpRequestOptions): Promise<HttpResponse>;
    /** Frees the task. */
    destroy(): void;
  }
  /** A new HTTP task. */
  export function createHttp(): HttpRequest {
    return new NodeHttpRequest();
  }
}

/** One request as sent, with the status it got (0 for a transport failure, -1 while in flight). */
export class SentRequest {
  constructor(
    /** The method. */
    readonly method: string,
    /** The URL. */
    readonly url: string,
    /** The body, as text. */
    readonly body: string,
    /** The response's status. */
    public status: number = -1,
  ) {}
}

/** Test controls and counters. */
export const httpStats = {
  /** Requests sent. */
  sent: 0,
  /** Tasks made and not destroyed. */
  live: 0,
  /** `usingCache` of every request, in order. */
  usingCache: [] as boolean[],
  /** Every request, in order. */
  requests: [] as SentRequest[],
};

class NodeHttpRequest implements http.HttpRequest {
  private destroyed = false;
  private readonly inFlight = new Set<nodeHttp.ClientRequest>();

  constructor() {
    httpStats.live += 1;
  }

  request(url: string, options: http.HttpRequestOptions = {}): Promise<http.HttpResponse> {
    if (this.destroyed) return Promise.reject(new FakeBusinessError(2300999, 'the HttpRequest was destroyed'));
    httpStats.sent += 1;
    httpStats.usingCache.push(options.usingCache ?? true);
    const method = options.method ?? http.RequestMethod.GET;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(options.header ?? {})) headers[k] = String(v);
    let body: Buffer | undefined;
    if (options.extraData instanceof ArrayBuffer) body = Buffer.from(options.extraData);
    else if (typeof options.extraData === 'string') body = Buffer.from(options.extraData, 'utf8');
    else if (options.extraData !== undefined) body = Buffer.from(JSON.stringify(options.extraData), 'utf8');
    const sent = new SentRequest(method, url, body === undefined ? '' : body.toString('utf8'));
    httpStats.requests.push(sent);
    const connectTimeout = options.connectTimeout ?? 60_000;
    const readTimeout = options.readTimeout ?? 60_000;
    return new Promise<http.HttpResponse>((resolve, reject) => {
      let settled = false;
      const fail = (code: number, message: string): void => {
        if (settled) return;
        settled = true;
        sent.status = 0;
        clearTimeout(total);
        clearTimeout(connecting);
        req.destroy();
        reject(new FakeBusinessError(code, message));
      };
      const req = nodeHttp.request(url, { method, headers, agent: false });
      this.inFlight.add(req);
      const total = setTimeout(() => fail(2300028, `Timeout was reached (${readTimeout} ms)`), readTimeout);
      const connecting = setTimeout(() => fail(2300028, `Timeout was reached while connecting (${connectTimeout} ms)`), connectTimeout);
      req.on('socket', (socket) => socket.on('connect', () => clearTimeout(connecting)));
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'ECONNREFUSED') fail(2300007, `Couldn't connect to server: ${e.message}`);
        else if (e.code === 'ENOTFOUND') fail(2300006, `Couldn't resolve host name: ${e.message}`);
        else if (e.code === 'ECONNRESET' || e.message.includes('socket hang up')) fail(2300052, `Server returned nothing: ${e.message}`);
        else fail(2300056, `Failure when receiving data from the peer: ${e.message}`);
      });
      req.on('response', (res) => {
        clearTimeout(connecting);
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e: Error) => fail(2300056, `Failure when receiving data from the peer: ${e.message}`));
        res.on('end', () => {
          if (settled) return;
          settled = true;
          sent.status = res.statusCode ?? 0;
          clearTimeout(total);
          this.inFlight.delete(req);
          const data = Buffer.concat(chunks);
          const header: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) header[k] = Array.isArray(v) ? v.join(', ') : v;
          const asBuffer = options.expectDataType === http.HttpDataType.ARRAY_BUFFER;
          resolve({
            result: asBuffer ? data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) : data.toString('utf8'),
            resultType: asBuffer ? http.HttpDataType.ARRAY_BUFFER : http.HttpDataType.STRING,
            responseCode: res.statusCode ?? 0,
            header,
            cookies: '',
          });
        });
      });
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    httpStats.live -= 1;
    for (const req of this.inFlight) req.destroy();
    this.inFlight.clear();
  }
}
