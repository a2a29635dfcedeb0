// What the form can tell about an address as it is typed. The server is the authority (EIP-55
// checksums, Bitcoin checksums and Solana's 32 bytes are checked there); this catches typos early.

export type AddressCheck = { ok: true; normalized: string } | { ok: false; message: string };

const BASE58 = /^[1-9A-HJ-NP-Za-km-z]+$/;

export function checkAddress(network: string, raw: string): AddressCheck {
  const address = raw.trim();
  if (address === '') return { ok: false, message: 'Enter an address.' };
  if (network.startsWith('Bitcoin')) {
    const prefix = network === 'Bitcoin' ? 'bc1' : 'tb1';
    if (address.toLowerCase().startsWith(prefix)) {
      return /^[a-z0-9]{39,87}$/.test(address.toLowerCase()) && address === address.toLowerCase()
        ? { ok: true, normalized: address }
        : { ok: false, message: `A ${network} segwit address is ${prefix} followed by lowercase letters and digits.` };
    }
    return BASE58.test(address) && address.length >= 26 && address.length <= 35
      ? { ok: true, normalized: address }
      : { ok: false, message: `Not a ${network} address (segwit ${prefix}… or base58).` };
  }
  if (network.startsWith('Solana')) {
    return BASE58.test(address) && address.length >= 32 && address.length <= 44
      ? { ok: true, normalized: address }
      : { ok: false, message: 'A Solana address is 32 to 44 base58 characters (case matters).' };
  }
  // Every other network is EVM.
  if (!/^0x[0-9a-fA-F]*$/.test(address)) return { ok: false, message: 'An EVM address is 0x followed by 40 hex digits.' };
  if (address.length !== 42) return { ok: false, message: `An EVM address is 0x followed by 40 hex digits (${address.length - 2} so far).` };
  // Sent lowercased: the platform stores EVM addresses in lowercase.
  return { ok: true, normalized: address.toLowerCase() };
}
