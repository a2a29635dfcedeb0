// Shared plumbing of the conformance scenario: the bootstrap file, SDK clients, the emulator's
// control API, a webhook receiver, and the record of which SDK calls were exercised.
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createHmac, createPrivateKey, timingSafeEqual } from 'node:crypto';
import { DfnsApiClient } from '@dfns/sdk';
import { AsymmetricKeySigner } from '@dfns/sdk-keysigner';
import { assertMatchesSdkType } from './validate.mjs';

export function loadBootstrap() {
  const file = process.env.DFNS_BOOTSTRAP_FILE;
  if (!file) {
    throw new Error('DFNS_BOOTSTRAP_FILE is not set: run through `cargo xtask test` (it starts the emulator)');
  }
  return JSON.parse(readFileSync(file, 'utf8'));
}

/** Node's key signer wants `algorithm` unset for Ed25519 and 'SHA256' for ECDSA keys. */
export function keySigner(identity) {
  let keyType;
  try {
    keyType = createPrivateKey(identity.privateKeyPem).asymmetricKeyType;
  } catch (err) {
    // The key signer hands this PEM to Node's crypto.sign: a key Node cannot load is unusable with Dfns' SDK.
    throw new Error(
      `the bootstrap privateKeyPem of ${identity.userId} cannot be loaded by Node's crypto ` +
        `(OpenSSL ${process.versions.openssl}), so @dfns/sdk-keysigner cannot sign with it: ${err.message}`,
    );
  }
  return new AsymmetricKeySigner({
    credId: identity.credId,
    privateKey: identity.privateKeyPem,
    algorithm: keyType === 'ed25519' ? undefined : 'SHA256',
  });
}

/** Every challenge the SDK receives during user-action signing is checked against the SDK type. */
class ValidatingSigner {
  constructor(inner, record) {
    this.inner = inner;
    this.record = record;
  }
  async sign(challenge) {
    assertMatchesSdkType('CreateUserActionChallengeResponse', challenge, 'POST /auth/action/init (inside user-action signing)');
    this.record.challenges += 1;
    return this.inner.sign(challenge);
  }
}

export function sdkClient(bootstrap, identity, record) {
  return new DfnsApiClient({
    baseUrl: bootstrap.baseUrl,
    orgId: bootstrap.orgId, // makes the SDK check the token's org claim before every call
    authToken: identity.token,
    signer: new ValidatingSigner(keySigner(identity), record),
  });
}

/** Records which SDK calls ran and whether their response matched the SDK type. */
export class Coverage {
  constructor() {
    this.calls = new Map();
    this.challenges = 0;
  }
  /** Runs an SDK call, validates its response against `typeName`, and records the outcome. */
  async call(name, typeName, fn) {
    const entry = this.calls.get(name) ?? { ok: 0, failed: 0, type: typeName };
    this.calls.set(name, entry);
    try {
      const response = await fn();
      if (typeName) assertMatchesSdkType(typeName, response, `${name}`);
      entry.ok += 1;
      return response;
    } catch (err) {
      entry.failed += 1;
      throw err;
    }
  }
  /** Records a call whose failure is the expected outcome (e.g. a 409). */
  async expectError(name, fn) {
    const entry = this.calls.get(name) ?? { ok: 0, failed: 0, type: null };
    this.calls.set(name, entry);
    try {
      await fn();
    } catch (err) {
      entry.ok += 1;
      return err;
    }
    entry.failed += 1;
    throw new Error(`${name}: expected the call to fail, it succeeded`);
  }
  summary() {
    return [...this.calls.entries()].map(([name, e]) => ({ call: name, responseType: e.type, ok: e.ok, failed: e.failed }));
  }
  writeTo(file) {
    writeFileSync(file, JSON.stringify({ sdk: '@dfns/sdk', calls: this.summary(), userActionChallengesValidated: this.challenges }, null, 2));
  }
}

/** The emulator's own control API (no Dfns auth, loopback only). */
export function controlApi(baseUrl) {
  const call = async (method, path, body) => {
    const res = await fetch(new URL(path, baseUrl), {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`control API ${method} ${path} → ${res.status}: ${text}`);
    return text ? JSON.parse(text) : undefined;
  };
  return {
    deposit: (body) => call('POST', '/emulator/deposits', body),
    setPrices: (prices) => call('PUT', '/emulator/prices', { prices }),
    clock: () => call('GET', '/emulator/clock'),
    advanceClock: (seconds) => call('POST', '/emulator/clock/advance', { seconds }),
    setLifecycle: (body) => call('PUT', '/emulator/transfer-lifecycle', body),
    stats: () => call('GET', '/emulator/stats'),
    grant: (userId, operations) => call('POST', '/emulator/permissions', { userId, operations }),
  };
}

/** A local HTTP endpoint that records webhook deliveries with their raw bodies and headers. */
export async function startWebhookReceiver() {
  const deliveries = [];
  const waiters = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const delivery = { raw: Buffer.concat(chunks), headers: req.headers, path: req.url, receivedAt: Date.now() };
      deliveries.push(delivery);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      for (const w of [...waiters]) w();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/dfns-webhook`,
    deliveries,
    /** Resolves with the first delivery satisfying `pred`, or rejects after `timeoutMs`. */
    waitFor(pred, timeoutMs, what) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = deliveries.find(pred);
          if (found) {
            clearTimeout(timer);
            waiters.splice(waiters.indexOf(check), 1);
            resolve(found);
          }
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(check), 1);
          const kinds = deliveries.map((d) => safeJson(d.raw)?.kind);
          reject(new Error(`no webhook delivery ${what} within ${timeoutMs} ms (received: ${JSON.stringify(kinds)})`));
        }, timeoutMs);
        waiters.push(check);
        check();
      });
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

export function safeJson(buf) {
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** Checks `X-DFNS-WEBHOOK-SIGNATURE: sha256=<hex HMAC-SHA256 of the raw body>` with the webhook secret. */
export function verifyWebhookSignature(delivery, secret) {
  const header = delivery.headers['x-dfns-webhook-signature'];
  if (typeof header !== 'string') throw new Error('delivery has no X-DFNS-WEBHOOK-SIGNATURE header');
  const m = header.match(/^sha256=([0-9a-f]{64})$/);
  if (!m) throw new Error(`X-DFNS-WEBHOOK-SIGNATURE is not "sha256=<64 lowercase hex>": ${header}`);
  const expected = createHmac('sha256', Buffer.from(secret, 'utf8')).update(delivery.raw).digest();
  if (!timingSafeEqual(expected, Buffer.from(m[1], 'hex'))) {
    throw new Error('X-DFNS-WEBHOOK-SIGNATURE does not verify with the secret returned by createWebhook');
  }
}

/** Minimal RFC 4180 CSV parser (quoted fields, doubled quotes, CRLF or LF). */
export function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') field += '"', i++;
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(field), (field = '');
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field), rows.push(row), (row = []), (field = '');
    } else field += c;
  }
  if (field !== '' || row.length > 0) row.push(field), rows.push(row);
  return rows;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until `done(value)`; returns the last value or throws after `timeoutMs`. */
export async function pollUntil(fn, done, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (done(last)) return last;
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms (last: ${JSON.stringify(last).slice(0, 300)})`);
    await sleep(50);
  }
}
