/**
 * Who may see the dashboard and which requests may change anything: authentication (a bearer
 * token, basic credentials, or the host app's own `authorize(request)`), CSRF tokens for every
 * POST, and the response headers every page carries (a Content-Security-Policy that runs no
 * inline script, so even markup that slipped through escaping could not execute).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InvalidOptionError, rejectUnknownKeys } from '@docket/core';

/**
 * How requests are authenticated: a bearer token (`Authorization: Bearer …`, or a cookie set by the
 * login form), basic credentials (the browser asks), or your own check of the request (your
 * session, your SSO). Without `auth` every request is let in: only on loopback.
 */
export type DashboardAuth =
  | { readonly token: string }
  | { readonly username: string; readonly password: string }
  | { readonly authorize: (request: IncomingMessage) => boolean | Promise<boolean> };

export type AuthMode = 'none' | 'token' | 'basic' | 'authorize';

const SESSION_COOKIE = 'docket_session';
const CSRF_COOKIE = 'docket_csrf';

/** Compares secrets in constant time (through fixed-length digests, so lengths do not leak either). */
function same(a: string, b: string): boolean {
  const ha = createHmac('sha256', 'docket-compare').update(a).digest();
  const hb = createHmac('sha256', 'docket-compare').update(b).digest();
  return timingSafeEqual(ha, hb);
}

export function cookies(req: IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return out;
}

export class Security {
  readonly mode: AuthMode;
  readonly #auth: DashboardAuth | undefined;
  readonly #key: Buffer;

  constructor(
    auth: DashboardAuth | undefined,
    secret: string | undefined,
    private readonly cookiePath: string,
  ) {
    this.#auth = validateAuth(auth);
    this.mode = !auth ? 'none' : 'token' in auth ? 'token' : 'authorize' in auth ? 'authorize' : 'basic';
    if (secret !== undefined && (typeof secret !== 'string' || secret.length < 32)) {
      throw new InvalidOptionError('dashboard options: `secret` must be a string of at least 32 characters (it signs CSRF tokens and sessions).', {
        details: { option: 'secret' },
      });
    }
    this.#key = secret ? Buffer.from(secret) : randomBytes(32);
  }

  #mac(value: string): string {
    return createHmac('sha256', this.#key).update(value).digest('base64url');
  }

  /** Whether the request is authenticated. */
  async authenticated(req: IncomingMessage): Promise<boolean> {
    const auth = this.#auth;
    if (!auth) return true;
    if ('authorize' in auth) return (await auth.authorize(req)) === true;
    const header = req.headers.authorization ?? '';
    if ('token' in auth) {
      if (header.startsWith('Bearer ')) return same(header.slice(7).trim(), auth.token);
      const session = cookies(req).get(SESSION_COOKIE);
      return session !== undefined && same(session, this.#mac(`session:${auth.token}`));
    }
    if (!header.startsWith('Basic ')) return false;
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return false;
    // Both compared, always: which of the two was wrong does not show in the time taken.
    const user = same(decoded.slice(0, colon), auth.username);
    const password = same(decoded.slice(colon + 1), auth.password);
    return user && password;
  }

  /** Token mode: whether `token` is the token; then `sessionCookie()` lets the browser in without it. */
  checkLogin(token: string): boolean {
    const auth = this.#auth;
    return auth !== undefined && 'token' in auth && same(token, auth.token);
  }

  sessionCookie(req: IncomingMessage): string {
    const auth = this.#auth as { token: string };
    return this.#cookie(req, SESSION_COOKIE, this.#mac(`session:${auth.token}`), 12 * 3600);
  }

  clearSessionCookie(req: IncomingMessage): string {
    return this.#cookie(req, SESSION_COOKIE, '', 0);
  }

  /** What a 401 says: basic mode asks the browser for credentials. */
  challenge(res: ServerResponse): void {
    if (this.mode === 'basic') res.setHeader('www-authenticate', 'Basic realm="Docket dashboard", charset="UTF-8"');
  }

  /**
   * The CSRF token for this browser, setting its CSRF cookie on `res` when it has none: forms carry
   * the token, which is the cookie's MAC, so a page on another site can neither read nor forge it.
   */
  csrfToken(req: IncomingMessage, res: ServerResponse): string {
    let value = cookies(req).get(CSRF_COOKIE);
    if (!value || !/^[A-Za-z0-9_-]{43}$/.test(value)) {
      value = randomBytes(32).toString('base64url');
      res.appendHeader('set-cookie', this.#cookie(req, CSRF_COOKIE, value, 0, true));
      // The same request may render several forms: they share the new cookie.
      req.headers.cookie = `${req.headers.cookie ? `${req.headers.cookie}; ` : ''}${CSRF_COOKIE}=${value}`;
    }
    return this.#mac(`csrf:${value}`);
  }

  /** Whether a POST carries the token of its browser's CSRF cookie (and does not come from another site). */
  csrfValid(req: IncomingMessage, token: string | null): boolean {
    if (req.headers['sec-fetch-site'] === 'cross-site') return false;
    const value = cookies(req).get(CSRF_COOKIE);
    if (!value || !token) return false;
    return same(token, this.#mac(`csrf:${value}`));
  }

  #cookie(req: IncomingMessage, name: string, value: string, maxAgeS: number, session = false): string {
    const secure = (req.socket as { encrypted?: boolean }).encrypted || req.headers['x-forwarded-proto'] === 'https';
    return `${name}=${value}; Path=${this.cookiePath}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}${session ? '' : `; Max-Age=${maxAgeS}`}`;
  }
}

function validateAuth(auth: DashboardAuth | undefined): DashboardAuth | undefined {
  if (auth === undefined) return undefined;
  const where = 'dashboard options.auth';
  if (auth === null || typeof auth !== 'object') {
    throw new InvalidOptionError(`${where} must be { token }, { username, password } or { authorize(request) }.`, { details: { option: 'auth' } });
  }
  if ('token' in auth) {
    rejectUnknownKeys(where, auth, ['token']);
    if (typeof auth.token !== 'string' || auth.token.length < 16) {
      throw new InvalidOptionError(`${where}.token must be a string of at least 16 characters (a random one: openssl rand -hex 32).`, {
        details: { option: 'auth.token' },
      });
    }
  } else if ('authorize' in auth) {
    rejectUnknownKeys(where, auth, ['authorize']);
    if (typeof auth.authorize !== 'function')
      throw new InvalidOptionError(`${where}.authorize must be a function (request) => boolean.`, { details: { option: 'auth.authorize' } });
  } else {
    rejectUnknownKeys(where, auth, ['username', 'password']);
    const { username, password } = auth as { username?: unknown; password?: unknown };
    if (typeof username !== 'string' || username === '' || username.includes(':') || typeof password !== 'string' || password.length < 8) {
      throw new InvalidOptionError(
        `${where} needs \`username\` (no colon) and \`password\` (at least 8 characters), or { token }, or { authorize }.`,
        {
          details: { option: 'auth' },
        },
      );
    }
  }
  return auth;
}

/** Headers every response carries. */
export function securityHeaders(res: ServerResponse): void {
  res.setHeader(
    'content-security-policy',
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  );
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('x-frame-options', 'DENY');
  res.setHeader('referrer-policy', 'no-referrer');
  res.setHeader('cache-control', 'no-store');
}

/** Whether `host` is a loopback address (where an unauthenticated dashboard may listen). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::ffff:127.0.0.1';
}
