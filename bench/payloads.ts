import { randomBytes } from 'node:crypto';

/**
 * The benchmark inputs. JSON documents are realistic (varied records, not one repeated string) and
 * generated from a fixed seed so every run measures the same bytes; a free-text field is trimmed so
 * the serialized document hits its nominal size exactly.
 */
export interface Payload {
  name: string;
  kind: 'string' | 'json' | 'bytes';
  value: string | Buffer | object;
  /** Bytes as a user would encode it: UTF-8 text, JSON.stringify as UTF-8, or the raw bytes. */
  size: number;
}

export function benchmarkPayloads(): Payload[] {
  return [
    stringPayload(100),
    jsonPayload('1 KiB JSON', 1024, 1),
    jsonPayload('64 KiB JSON', 64 * 1024, 64),
    bytesPayload(1024 * 1024),
  ];
}

/** The bytes a user would encrypt for this payload with bare `node:crypto`. */
export function encodeLikeAUser(payload: Payload): Buffer {
  switch (payload.kind) {
    case 'string':
      return Buffer.from(payload.value as string, 'utf8');
    case 'json':
      return Buffer.from(JSON.stringify(payload.value), 'utf8');
    case 'bytes':
      return payload.value as Buffer;
  }
}

function stringPayload(size: number): Payload {
  const text = 'Session note: the customer asked to move the delivery of order 4471 to Friday morning, before 10am. '
    .repeat(2)
    .slice(0, size);
  return { name: `${size} B string`, kind: 'string', value: text, size: Buffer.byteLength(text) };
}

function bytesPayload(size: number): Payload {
  return { name: '1 MiB random bytes', kind: 'bytes', value: randomBytes(size), size };
}

/** A document of `records` customer orders whose JSON is exactly `size` bytes. */
function jsonPayload(name: string, size: number, records: number): Payload {
  const random = seededRandom(records);
  const orders = Array.from({ length: records }, (_, i) => order(random, i));
  const document = records === 1 ? orders[0] : { page: 1, pageSize: records, total: 9_214, orders };
  // Spread the slack over every record's note so no single record is padded unrealistically.
  const slack = size - Buffer.byteLength(JSON.stringify(document));
  if (slack < 0) throw new Error(`${name}: the generated document is ${-slack} bytes too large`);
  orders.forEach((o, i) => {
    const extra = Math.floor(slack / records) + (i < slack % records ? 1 : 0);
    o.note = NOTE_TEXT.repeat(Math.ceil(extra / NOTE_TEXT.length) + 1).slice(0, extra);
  });
  const actual = Buffer.byteLength(JSON.stringify(document));
  if (actual !== size) throw new Error(`${name}: expected ${size} bytes, got ${actual}`);
  return { name, kind: 'json', value: document, size };
}

const NOTE_TEXT = 'Leave the parcel with the concierge if nobody answers; the side gate code changed last week. ';
const FIRST = ['Ada', 'Grace', 'Linus', 'Margaret', 'Ken', 'Barbara', 'Dennis', 'Frances', 'Alan', 'Radia'];
const LAST = [
  'Lovelace',
  'Hopper',
  'Torvalds',
  'Hamilton',
  'Thompson',
  'Liskov',
  'Ritchie',
  'Allen',
  'Turing',
  'Perlman',
];
const CITIES = ['Lisbon', 'Utrecht', 'Tallinn', 'Ljubljana', 'Porto', 'Gdansk', 'Leuven', 'Aarhus'];
const PRODUCTS = ['USB-C cable', 'Desk lamp', 'Notebook A5', 'Mechanical keyboard', 'Monitor arm', 'Webcam', 'Headset'];

interface Order {
  id: string;
  createdAt: string;
  status: string;
  customer: { id: number; name: string; email: string; phone: string; address: Record<string, string> };
  items: { sku: string; name: string; quantity: number; unitPrice: number }[];
  totals: { currency: string; subtotal: number; shipping: number; tax: number; total: number };
  payment: { method: string; last4: string; authorized: boolean };
  tags: string[];
  note: string;
}

function order(random: () => number, index: number): Order {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)];
  const first = pick(FIRST);
  const last = pick(LAST);
  const items = Array.from({ length: 1 + Math.floor(random() * 3) }, () => ({
    sku: `SKU-${Math.floor(random() * 900_000 + 100_000)}`,
    name: pick(PRODUCTS),
    quantity: 1 + Math.floor(random() * 4),
    unitPrice: Math.round(random() * 20_000) / 100,
  }));
  const subtotal = Math.round(items.reduce((sum, item) => sum + item.quantity * item.unitPrice, 0) * 100) / 100;
  const shipping = 4.95;
  const tax = Math.round(subtotal * 21) / 100;
  return {
    id: `ord_${(0x10000000 + Math.floor(random() * 0xefffffff)).toString(16)}`,
    createdAt: new Date(Date.UTC(2026, 0, 1) + Math.floor(random() * 300 * 86_400_000)).toISOString(),
    status: pick(['paid', 'shipped', 'delivered']),
    customer: {
      id: 10_000 + index,
      name: `${first} ${last}`,
      email: `${first}.${last}@example.com`.toLowerCase(),
      phone: `+351 9${Math.floor(random() * 1e8)
        .toString()
        .padStart(8, '0')}`,
      address: {
        street: `${1 + Math.floor(random() * 200)} Rua das Flores`,
        postcode: `${1000 + Math.floor(random() * 8999)}-0${Math.floor(random() * 99)}`,
        city: pick(CITIES),
        country: 'PT',
      },
    },
    items,
    totals: { currency: 'EUR', subtotal, shipping, tax, total: Math.round((subtotal + shipping + tax) * 100) / 100 },
    payment: {
      method: pick(['card', 'sepa', 'paypal']),
      last4: Math.floor(random() * 10_000)
        .toString()
        .padStart(4, '0'),
      authorized: true,
    },
    tags: ['web', pick(['newsletter', 'returning', 'first-order', 'b2b'])],
    note: '',
  };
}

/** mulberry32: a tiny deterministic PRNG for test data (never for keys or nonces). */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
