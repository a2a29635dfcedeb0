// The client's own check of its audit chain, mirroring shared/domain/src/audit.rs:
// hash = sha256(prevHash ‖ body), over the 32 raw bytes of prevHash then the body's UTF-8 bytes;
// entry 1's prevHash is 32 zero bytes; hashes are lowercase hex; entries are numbered 1, 2, 3, …

export interface ChainLink {
  seq: number;
  prevHash: string;
  hash: string;
  body: string;
}

export type ChainResult =
  | { ok: true; length: number; headHash: string | null }
  | { ok: false; seq: number; reason: string };

export const GENESIS = '0'.repeat(64);

function hexToBytes(hex: string): Uint8Array | null {
  if (!/^[0-9a-f]{64}$/.test(hex)) return null;
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function bytesToHex(bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
}

export async function chainHash(prevHash: string, body: string): Promise<string | null> {
  const prev = hexToBytes(prevHash);
  if (!prev) return null;
  const text = new TextEncoder().encode(body);
  const data = new Uint8Array(32 + text.length);
  data.set(prev, 0);
  data.set(text, 32);
  return bytesToHex(await crypto.subtle.digest('SHA-256', data));
}

/** Verifies a whole chain, oldest first; `expectedHead` is the server's head hash, if given. */
export async function verifyChain(entries: ChainLink[], expectedHead?: string | null): Promise<ChainResult> {
  let prev = GENESIS;
  let expectedSeq = 1;
  for (const entry of entries) {
    if (entry.seq !== expectedSeq) return { ok: false, seq: entry.seq, reason: `expected entry ${expectedSeq} here (a gap or a duplicate)` };
    if (entry.prevHash !== prev) return { ok: false, seq: entry.seq, reason: "its prevHash is not the previous entry's hash" };
    const computed = await chainHash(entry.prevHash, entry.body);
    if (computed === null || computed !== entry.hash) return { ok: false, seq: entry.seq, reason: 'its hash is not sha256(prevHash ‖ body)' };
    let bodySeq: unknown;
    try {
      bodySeq = (JSON.parse(entry.body) as { seq?: unknown }).seq;
    } catch {
      bodySeq = undefined;
    }
    if (bodySeq !== entry.seq) return { ok: false, seq: entry.seq, reason: 'its body names another sequence number' };
    prev = entry.hash;
    expectedSeq += 1;
  }
  const head = entries.length > 0 ? prev : null;
  if (expectedHead && head !== expectedHead) {
    return { ok: false, seq: entries.length, reason: "the last entry's hash is not the server's head hash" };
  }
  return { ok: true, length: entries.length, headHash: head };
}
