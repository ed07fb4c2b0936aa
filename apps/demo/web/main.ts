/**
 * The browser half of the demo: encrypts the form to the server's public key (its JWKS) as a compact
 * JWE with WebCrypto, through jose's browser build, and shows every step. Bundled by
 * scripts/build-web.mjs; served by apps/demo/src/web/web.controller.ts.
 *
 * Unknown keys: the server answers a JWE it can't open with the same 400 `DECRYPTION_FAILED` whatever
 * the cause (tampering, unknown or retired key), so clients learn nothing from it. The page therefore
 * refetches the JWKS after that answer, and retries once, re-encrypted, only when the key it used is
 * no longer published. The JWKS is public, so this tells the page nothing the server didn't publish.
 */
import type { JWK } from 'jose';
import { CompactEncrypt, importJWK } from 'jose';

/** Key management algorithms of the server's key pairs (libs/encryption/src/crypto/jwe.ts). */
const ALGORITHMS = new Set(['RSA-OAEP-256', 'ECDH-ES+A256KW']);
const FIELDS = ['name', 'email', 'phone', 'nationalId'] as const;
const JWKS_URL = '/.well-known/jwks.json';

type ServerKey = JWK & { kid: string; alg: string };
type CustomerInput = Partial<Record<(typeof FIELDS)[number], string>>;
type Json = Record<string, unknown>;

interface Answer {
  status: number;
  body: unknown;
}

const form = element<HTMLFormElement>('customer-form');
const submit = element<HTMLButtonElement>('submit');
const tamperBox = element<HTMLInputElement>('tamper');

/** The last JWKS fetched, kept while the page is open the way a client caches it. */
let jwks: ServerKey[] | undefined;

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`#${id} is missing from index.html`);
  return found as T;
}

function setState(state: 'loading' | 'idle' | 'busy' | 'done' | 'error'): void {
  document.body.dataset.state = state;
  submit.disabled = state === 'busy' || state === 'loading';
}

function show(id: string, value: unknown): void {
  element(id).textContent = typeof value === 'string' ? value : JSON.stringify(value, null, 2);
}

/** A running history of the page's steps, so a visitor sees each one (and each attempt). */
function log(text: string, bad = false): void {
  const item = document.createElement('li');
  item.textContent = text;
  if (bad) item.className = 'bad';
  element('log').append(item);
}

function showError(text: string, status = 'Not saved.'): void {
  const box = element('error');
  box.textContent = text;
  box.hidden = false;
  log(text, true);
  element('status').textContent = status;
  setState('error');
}

const short = (kid: string) => `${kid.slice(0, 10)}…`;

/** Fetches the JWKS; `reload` bypasses the HTTP cache (the server lets clients cache it for a while). */
async function fetchJwks(reload: boolean): Promise<ServerKey[]> {
  const response = await fetch(JWKS_URL, {
    cache: reload ? 'reload' : 'default',
    headers: { accept: 'application/json' },
  });
  if (!response.ok) throw new Error(`GET ${JWKS_URL} answered HTTP ${response.status}`);
  const body = (await response.json()) as { keys?: unknown };
  const keys = (Array.isArray(body.keys) ? body.keys : []) as JWK[];
  jwks = keys.filter(
    (key): key is ServerKey =>
      typeof key.kid === 'string' &&
      typeof key.alg === 'string' &&
      ALGORITHMS.has(key.alg) &&
      (key.use ?? 'enc') === 'enc',
  );
  const active = activeKey(jwks);
  const status = element('key-status');
  status.dataset.kid = active.kid;
  status.textContent =
    `Encrypting to key ${short(active.kid)} (${active.alg}); ${jwks.length} key(s) published; ` +
    `fetched ${new Date().toLocaleTimeString()}.`;
  log(
    `${reload ? 'Refetched' : 'Fetched'} ${JWKS_URL}: active key ${short(active.kid)}, ${jwks.length} key(s) published.`,
  );
  return jwks;
}

/** The server lists its active key pair first (KeyManagerService.publicJwks). */
function activeKey(keys: readonly ServerKey[]): ServerKey {
  const [first] = keys;
  if (!first) throw new Error(`${JWKS_URL} publishes no key this page can encrypt to`);
  return first;
}

function readForm(): CustomerInput {
  const record: CustomerInput = {};
  for (const field of FIELDS) {
    const value = (form.elements.namedItem(field) as HTMLInputElement).value;
    // An empty optional field is left out rather than sent as "" (which the server would validate).
    if (value !== '' || field !== 'phone') record[field] = value;
  }
  return record;
}

/** Compact JWE of the record; `cty: 'json'` tells the server's `decrypt()` to return the JSON object. */
async function encrypt(record: CustomerInput, key: ServerKey): Promise<string> {
  const publicKey = await importJWK(key, key.alg);
  return new CompactEncrypt(new TextEncoder().encode(JSON.stringify(record)))
    .setProtectedHeader({ alg: key.alg, enc: 'A256GCM', kid: key.kid, cty: 'json' })
    .encrypt(publicKey);
}

/** Test hook: one character of the ciphertext segment changed, as if altered on the way. */
function tamper(jwe: string): string {
  const segments = jwe.split('.');
  const ciphertext = segments[3];
  const at = Math.floor(ciphertext.length / 2);
  segments[3] = ciphertext.slice(0, at) + (ciphertext[at] === 'A' ? 'B' : 'A') + ciphertext.slice(at + 1);
  return segments.join('.');
}

async function request(method: 'GET' | 'POST', url: string, body?: string): Promise<Answer> {
  const response = await fetch(url, {
    method,
    headers:
      body === undefined
        ? { accept: 'application/json' }
        : { accept: 'application/json', 'content-type': 'application/json' },
    body,
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON: shown as text.
  }
  return { status: response.status, body: parsed };
}

async function send(record: CustomerInput, key: ServerKey): Promise<Answer> {
  let jwe = await encrypt(record, key);
  if (tamperBox.checked) {
    jwe = tamper(jwe);
    log('Tampered with the JWE (test hook): one character of its ciphertext changed.', true);
  }
  const body = JSON.stringify({ ciphertext: jwe });
  const [header] = jwe.split('.');
  show('sent-header', JSON.parse(new TextDecoder().decode(base64urlDecode(header))));
  show('sent', body);
  const answer = await request('POST', '/customers/envelope', body);
  log(`Encrypted the form to key ${short(key.kid)} and posted it: HTTP ${answer.status}.`, answer.status >= 400);
  return answer;
}

function base64urlDecode(segment: string): Uint8Array {
  const base64 = segment.replace(/-/g, '+').replace(/_/g, '/');
  return Uint8Array.from(atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4)), (c) => c.charCodeAt(0));
}

const isDecryptionFailure = (answer: Answer) =>
  answer.status === 400 && (answer.body as Json | undefined)?.reason === 'DECRYPTION_FAILED';

function describeRefusal(answer: Answer): string {
  const body = (typeof answer.body === 'object' && answer.body !== null ? answer.body : {}) as Json;
  const message = Array.isArray(body.message) ? body.message.join('; ') : String(body.message ?? answer.body);
  if (answer.status !== 400) return `The server answered HTTP ${answer.status}: ${message}`;
  if (body.reason === 'DECRYPTION_FAILED') {
    return (
      `The server refused the submission (400 DECRYPTION_FAILED): ${message}. ` +
      "The JWE did not decrypt with the server's keys: it was altered on the way, or made for a key the server no longer has."
    );
  }
  if (typeof body.reason === 'string') return `The server refused the submission (400 ${body.reason}): ${message}`;
  return `The server refused the record (400, validation): ${message}`;
}

async function onSubmit(event: SubmitEvent): Promise<void> {
  event.preventDefault();
  setState('busy');
  element('error').hidden = true;
  for (const id of ['sent-header', 'sent', 'answer', 'stored', 'read']) show(id, '–');
  element('status').textContent = 'Encrypting…';
  try {
    const record = readForm();
    let key = activeKey(jwks ?? (await fetchJwks(false)));
    let answer = await send(record, key);
    if (isDecryptionFailure(answer)) {
      const used = key.kid;
      const keys = await fetchJwks(true);
      if (!keys.some((candidate) => candidate.kid === used)) {
        key = activeKey(keys);
        log(
          `Key ${short(used)} is no longer published (the server rotated it away): re-encrypting to ${short(key.kid)}, once.`,
        );
        answer = await send(record, key);
      }
    }
    show('answer', answer.body);
    if (answer.status !== 201) return showError(describeRefusal(answer));

    const id = String((answer.body as Json).id);
    element('stored-route').textContent = `GET /customers/${id}/stored`;
    element('read-route').textContent = `GET /customers/${id}`;
    const [stored, read] = await Promise.all([
      request('GET', `/customers/${id}/stored`),
      request('GET', `/customers/${id}`),
    ]);
    show('stored', stored.body);
    show('read', read.body);
    if (stored.status !== 200 || read.status !== 200)
      return showError(describeRefusal(stored.status !== 200 ? stored : read));
    log(`Stored customer ${id}; read it back: its personal fields are ciphertexts at rest and in answers.`);
    element('status').textContent = `Saved customer ${id}.`;
    element('status').dataset.customerId = id;
    setState('done');
  } catch (error) {
    showError(`Something went wrong in the page: ${error instanceof Error ? error.message : String(error)}`);
  }
}

form.addEventListener('submit', (event) => void onSubmit(event));
tamperBox.checked ||= new URLSearchParams(location.search).get('tamper') === '1';
setState('loading');
fetchJwks(false).then(
  () => {
    setState('idle');
    element('status').textContent = 'Ready.';
  },
  (error: unknown) =>
    showError(
      `Could not fetch the server's keys: ${error instanceof Error ? error.message : String(error)}`,
      'Not ready.',
    ),
);
