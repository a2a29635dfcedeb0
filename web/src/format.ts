// Amounts travel as integer strings in the asset's smallest unit; everything here is BigInt or
// decimal-string arithmetic so no value passes through a float.

/** `1500000000000000000`, 18 → `1.5` (trailing zeros trimmed, grouping with thin spaces off). */
export function formatUnits(amount: string, decimals: number): string {
  if (!/^[0-9]+$/.test(amount)) return amount;
  const value = BigInt(amount);
  const base = 10n ** BigInt(decimals);
  const whole = value / base;
  const fraction = (value % base).toString().padStart(decimals, '0').replace(/0+$/, '');
  return fraction ? `${group(whole.toString())}.${fraction}` : group(whole.toString());
}

/** `1.5`, 18 → `1500000000000000000`; null when the text is not a non-negative decimal with at
 * most `decimals` fraction digits. */
export function parseUnits(text: string, decimals: number): string | null {
  const trimmed = text.trim();
  const match = /^([0-9]+)(?:\.([0-9]*))?$/.exec(trimmed) ?? /^()\.([0-9]+)$/.exec(trimmed);
  if (!match) return null;
  const whole = match[1] || '0';
  const fraction = match[2] ?? '';
  if (fraction.length > decimals) return null;
  return (BigInt(whole) * 10n ** BigInt(decimals) + BigInt(fraction.padEnd(decimals, '0') || '0')).toString();
}

function group(digits: string): string {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** A decimal as a scaled BigInt: `3020.82` → 302082n at scale 2. Accepts what JSON numbers print
 * as (exponents are expanded). */
export function toDecimal(value: string | number): { units: bigint; scale: number } | null {
  let text = typeof value === 'number' ? numberText(value) : value.trim();
  if (text === null) return null;
  const negative = text.startsWith('-');
  if (negative) text = text.slice(1);
  const match = /^([0-9]*)(?:\.([0-9]*))?$/.exec(text);
  if (!match || (match[1] === '' && !match[2])) return null;
  const fraction = match[2] ?? '';
  const units = BigInt((match[1] || '0') + fraction);
  return { units: negative ? -units : units, scale: fraction.length };
}

/** The shortest decimal text of a JSON number, without exponent. */
function numberText(value: number): string | null {
  if (!Number.isFinite(value)) return null;
  const text = String(value);
  if (!/e/i.test(text)) return text;
  const [mantissa = '0', exponentText = '0'] = text.toLowerCase().split('e');
  const exponent = Number(exponentText);
  const negative = mantissa.startsWith('-');
  const [intPart = '0', fracPart = ''] = mantissa.replace('-', '').split('.');
  const digits = intPart + fracPart;
  const point = intPart.length + exponent;
  let out: string;
  if (point <= 0) out = `0.${'0'.repeat(-point)}${digits}`;
  else if (point >= digits.length) out = digits + '0'.repeat(point - digits.length);
  else out = `${digits.slice(0, point)}.${digits.slice(point)}`;
  return negative ? `-${out}` : out;
}

/** Formats a scaled decimal with exactly `places` fraction digits (rounded half up). */
export function formatDecimal(d: { units: bigint; scale: number }, places = 2): string {
  let { units } = d;
  const negative = units < 0n;
  if (negative) units = -units;
  let scaled: bigint;
  if (d.scale > places) {
    const div = 10n ** BigInt(d.scale - places);
    scaled = (units + div / 2n) / div;
  } else {
    scaled = units * 10n ** BigInt(places - d.scale);
  }
  const text = scaled.toString().padStart(places + 1, '0');
  const whole = group(text.slice(0, text.length - places));
  const out = places > 0 ? `${whole}.${text.slice(text.length - places)}` : whole;
  return negative ? `-${out}` : out;
}

export function addDecimals(a: { units: bigint; scale: number }, b: { units: bigint; scale: number }) {
  const scale = Math.max(a.scale, b.scale);
  return {
    units: a.units * 10n ** BigInt(scale - a.scale) + b.units * 10n ** BigInt(scale - b.scale),
    scale,
  };
}

/** USD value of `amount` smallest units at `quote` USD per whole unit. */
export function usdValue(amount: string, decimals: number, quote: string | number): { units: bigint; scale: number } | null {
  const price = toDecimal(quote);
  if (!price || !/^[0-9]+$/.test(amount)) return null;
  return { units: BigInt(amount) * price.units, scale: price.scale + decimals };
}

/** A USD string or number as the API gives it, with its currency. */
export function usd(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return '—';
  const d = toDecimal(value);
  return d ? `USD ${formatDecimal(d, Math.max(2, Math.min(d.scale, 2)))}` : `USD ${value}`;
}

export function dateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC').replace(/Z$/, ' UTC');
}

/** `1m 05s` until `iso`, or null once past. */
export function timeLeft(iso: string | null | undefined, now: number): string | null {
  if (!iso) return null;
  const ms = new Date(iso).getTime() - now;
  if (!(ms > 0)) return null;
  const s = Math.ceil(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h > 0) return `${h}h ${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m ${String(sec).padStart(2, '0')}s`;
  return `${sec}s`;
}

/** Native asset decimals and symbols per network family, for forms that take an amount. */
export function nativeAsset(network: string): { symbol: string; decimals: number } {
  if (network.startsWith('Bitcoin')) return { symbol: 'BTC', decimals: 8 };
  if (network.startsWith('Solana')) return { symbol: 'SOL', decimals: 9 };
  if (network.startsWith('Polygon')) return { symbol: 'POL', decimals: 18 };
  return { symbol: 'ETH', decimals: 18 };
}
