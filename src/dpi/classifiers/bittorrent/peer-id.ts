/**
 * Client names from BitTorrent peer ids (Azureus-style `-XXvvvv-` prefixes).
 * @module
 */

const AZUREUS: Record<string, string> = {
  AZ: 'Vuze/Azureus',
  BB: 'BitBuddy',
  BC: 'BitComet',
  BI: 'BiglyBT',
  BT: 'BitTorrent (mainline)',
  DE: 'Deluge',
  FD: 'Free Download Manager',
  KT: 'KTorrent',
  LT: 'libtorrent (rasterbar)',
  lt: 'libtorrent (rakshasa)',
  qB: 'qBittorrent',
  TR: 'Transmission',
  TX: 'Tixati',
  UM: 'µTorrent for Mac',
  UT: 'µTorrent',
  UW: 'µTorrent Web',
  WD: 'WebTorrent Desktop',
  WW: 'WebTorrent',
  XL: 'Xunlei',
  SD: 'Thunder (Xunlei)',
  AG: 'Ares',
  A2: 'aria2',
  BF: 'BitFlu',
  HL: 'Halite',
  PI: 'PicoTorrent',
  RT: 'Retriever',
  TT: 'TuoTu',
};

/** Client name for a 20-byte peer id, when its prefix is a known Azureus-style code. */
export function clientFromPeerId(id: Uint8Array): string | undefined {
  if (id.length < 8 || id[0] !== 0x2d || id[7] !== 0x2d) return undefined;
  const code = String.fromCharCode(id[1]!, id[2]!);
  const name = AZUREUS[code];
  if (!name) return undefined;
  const ver = String.fromCharCode(id[3]!, id[4]!, id[5]!, id[6]!);
  return /^[0-9A-Za-z.]{4}$/.test(ver) ? `${name} ${ver}` : name;
}
