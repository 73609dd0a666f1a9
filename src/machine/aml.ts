// A small encoder for ACPI Machine Language (ACPI 3.0 §18.2 "AML grammar definition") and the resource
// descriptors of _CRS buffers (§6.4). Every function returns the bytes of one term; callers nest them.

export type Aml = number[];

const cat = (...parts: Aml[]): Aml => parts.flat();

/** PkgLength (§18.2.4): 1 byte up to 63, else a lead byte with the count of following bytes. */
function pkgLength(contentLen: number): Aml {
  // The length counts its own bytes, so find the encoding size first.
  for (let n = 1; n <= 4; n++) {
    const total = contentLen + n;
    if (n === 1 && total < 0x40) return [total];
    if (n > 1 && total < 2 ** (4 + 8 * (n - 1))) {
      const out = [((n - 1) << 6) | (total & 0xf)];
      for (let i = 1; i < n; i++) out.push((total >>> (4 + 8 * (i - 1))) & 0xff);
      return out;
    }
  }
  throw new Error('AML package too long');
}

const pkg = (op: Aml, body: Aml): Aml => cat(op, pkgLength(body.length), body);

/** A NameSeg is four characters, padded with '_' (§18.2.2). */
function nameSeg(s: string): Aml {
  if (!/^[A-Z_][A-Z0-9_]{0,3}$/.test(s)) throw new Error(`bad AML name segment ${s}`);
  return [...s.padEnd(4, '_')].map((c) => c.charCodeAt(0));
}

/** NameString: optional root '\' or parent '^' prefixes, then one, two (0x2E) or more (0x2F) segments. */
export function nameString(path: string): Aml {
  let i = 0;
  const prefix: Aml = [];
  while (path[i] === '\\' || path[i] === '^') prefix.push(path.charCodeAt(i++));
  const segs = path.slice(i).split('.').filter((x) => x);
  if (segs.length === 0) return [...prefix, 0x00];
  const body = segs.flatMap(nameSeg);
  if (segs.length === 1) return [...prefix, ...body];
  if (segs.length === 2) return [...prefix, 0x2e, ...body];
  return [...prefix, 0x2f, segs.length, ...body];
}

/** The smallest integer encoding: Zero/One/Ones, or Byte/Word/DWord/QWord const (§18.2.3). */
export function int(v: number | bigint): Aml {
  const n = BigInt(v);
  if (n === 0n) return [0x00];
  if (n === 1n) return [0x01];
  const bytes = (count: number): Aml => Array.from({ length: count }, (_, i) => Number((n >> BigInt(8 * i)) & 0xffn));
  if (n < 0x100n) return [0x0a, ...bytes(1)];
  if (n < 0x10000n) return [0x0b, ...bytes(2)];
  if (n < 0x100000000n) return [0x0c, ...bytes(4)];
  return [0x0e, ...bytes(8)];
}

export function string(s: string): Aml { return [0x0d, ...[...s].map((c) => c.charCodeAt(0) & 0x7f), 0x00]; }

/** A compressed EISA ID such as "PNP0A03", as a DWord (§6.1.5: 3 letters × 5 bits, 4 hex digits). */
export function eisaId(id: string): Aml {
  const c = (i: number): number => id.charCodeAt(i) - 0x40;
  const hi = (c(0) << 10) | (c(1) << 5) | c(2);
  const lo = parseInt(id.slice(3), 16);
  // Stored big-endian within the little-endian DWord.
  const v = ((hi >>> 8) | ((hi & 0xff) << 8) | ((lo >>> 8) << 16) | ((lo & 0xff) << 24)) >>> 0;
  return [0x0c, v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
}

export const name = (n: string, value: Aml): Aml => cat([0x08], nameString(n), value);
export const scope = (n: string, ...terms: Aml[]): Aml => pkg([0x10], cat(nameString(n), ...terms));
export const device = (n: string, ...terms: Aml[]): Aml => pkg([0x5b, 0x82], cat(nameString(n), ...terms));
/** Method with `args` arguments, not serialized (§18.2.5.2 MethodFlags). */
export const method = (n: string, args: number, ...terms: Aml[]): Aml => pkg([0x14], cat(nameString(n), [args & 7], ...terms));
export const ret = (v: Aml): Aml => cat([0xa4], v);
export const store = (src: Aml, dst: Aml): Aml => cat([0x70], src, dst);
export const ifThen = (pred: Aml, ...terms: Aml[]): Aml => pkg([0xa0], cat(pred, ...terms));
export const elseDo = (...terms: Aml[]): Aml => pkg([0xa1], cat(...terms));
export const arg = (n: number): Aml => [0x68 + n];
export const ref = (path: string): Aml => nameString(path);

/** Package of elements (§18.2.5.4 DefPackage). */
export function pkgOf(elements: Aml[]): Aml {
  return pkg([0x12], cat([elements.length], ...elements));
}

export function buffer(bytes: Aml): Aml { return pkg([0x11], cat(int(bytes.length), bytes)); }

// --- Resource descriptors (§6.4) ---

const le = (v: number, n: number): Aml => Array.from({ length: n }, (_, i) => Math.floor(v / 2 ** (8 * i)) & 0xff);

/** A _CRS/_PRS buffer: the descriptors and the End Tag, whose checksum 0 means "treat as correct" (§6.4.2.8). */
export function resourceTemplate(...descs: Aml[]): Aml { return buffer(cat(...descs, [0x79, 0x00])); }

/** I/O port descriptor, 16-bit decode (§6.4.2.5). */
export function io(min: number, max: number, align: number, len: number): Aml {
  return cat([0x47, 0x01], le(min, 2), le(max, 2), [align, len]);
}

/** IRQ descriptor without flags: edge, active high (§6.4.2.1). */
export function irqNoFlags(...irqs: number[]): Aml {
  const mask = irqs.reduce((m, i) => m | (1 << i), 0);
  return [0x22, ...le(mask, 2)];
}

/**
 * Word address space descriptor (§6.4.3.5.3): resource type 1 = I/O, 2 = bus number; a producer with
 * fixed minimum and maximum (general flags 0x0C), the window [min, max].
 */
export function wordSpace(type: 1 | 2, min: number, max: number, typeFlags = type === 1 ? 0x03 : 0): Aml {
  return cat([0x88], le(13, 2), [type, 0x0c, typeFlags], le(0, 2), le(min, 2), le(max, 2), le(0, 2), le(max - min + 1, 2));
}

/** DWord memory descriptor (§6.4.3.5.2): producer, fixed window, cacheable read/write. */
export function dwordMemory(min: number, max: number): Aml {
  return cat([0x87], le(23, 2), [0x00, 0x0c, 0x03], le(0, 4), le(min, 4), le(max, 4), le(0, 4), le(max - min + 1, 4));
}
