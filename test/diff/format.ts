// Memory layout shared by the native oracle and the vCPU, and the binary
// interchange format of test/native/diff/harness.c (keep the two in step;
// the magics carry a version number).

export const CODE_LO = 0x000f0000; // landing-pad region (native side only)
export const CODE_HI = 0x00110000;
export const CODE_AT = 0x00100000; // the instruction under test
export const DATA_AT = 0x00200000;
export const STACK_AT = 0x00300000;
export const AREA = 0x10000; // size of the data area and of the stack area
export const SLOT = 16; // landing pads sit at every 16-byte boundary of the code region

const MAGIC_IN = 0x31494454; // "TDI1"
const MAGIC_OUT = 0x314f4454; // "TDO1"

export const GPR_NAMES = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi'] as const;

export interface Patch {
  addr: number; // linear, inside the data or stack area
  bytes: Uint8Array;
}

/** What goes to both CPUs. */
export interface CaseInput {
  gpr: Uint32Array; // EAX ECX EDX EBX ESP EBP ESI EDI
  eflags: number;
  code: Uint8Array; // 1..15 bytes
  patches: Patch[]; // bytes that differ from the pristine data/stack areas
  fx: Uint8Array | null; // 512-byte FXSAVE image, null = the run's default image
}

/** The architectural result (native oracle or vCPU). */
export interface CaseResult {
  vector: number; // -1 = no exception
  eip: number;
  gpr: Uint32Array;
  eflags: number;
  fx: Uint8Array; // 512-byte FXSAVE image
  changes: Map<number, number>; // linear address -> byte, for every byte that differs from the initial memory
  // Native-only details, for the report.
  signo?: number;
  sicode?: number;
  err?: number;
  faultAddr?: number;
}

/** The landing pad the native harness places right after the instruction
 *  (and which the vCPU also gets, so both decoders see identical bytes). */
export function landingPad(at: number): Uint8Array {
  // mov dword [landed_eip], at ; jmp [save_vec] — the addresses are the
  // harness's own and meaningless to the vCPU, which never executes them.
  const b = new Uint8Array(16);
  b[0] = 0xc7;
  b[1] = 0x05;
  new DataView(b.buffer).setUint32(6, at >>> 0, true);
  b[10] = 0xff;
  b[11] = 0x25;
  return b;
}

export function encodeCases(pristineData: Uint8Array, pristineStack: Uint8Array, fxDefault: Uint8Array, cases: CaseInput[]): Uint8Array {
  let size = 8 + 2 * AREA + 512;
  for (const c of cases) {
    size += 56 + (c.fx ? 512 : 0);
    for (const p of c.patches) size += 8 + ((p.bytes.length + 3) & ~3);
  }
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, MAGIC_IN, true);
  dv.setUint32(4, cases.length, true);
  out.set(pristineData, 8);
  out.set(pristineStack, 8 + AREA);
  out.set(fxDefault, 8 + 2 * AREA);
  let pos = 8 + 2 * AREA + 512;
  for (const c of cases) {
    if (c.code.length < 1 || c.code.length > 15) throw new Error(`bad instruction length ${c.code.length}`);
    if (c.patches.length > 64) throw new Error('too many patches');
    for (let i = 0; i < 8; i++) dv.setUint32(pos + 4 * i, c.gpr[i], true);
    dv.setUint32(pos + 32, c.eflags >>> 0, true);
    out[pos + 36] = c.code.length;
    out[pos + 37] = c.patches.length;
    out[pos + 38] = c.fx ? 1 : 0;
    out.set(c.code, pos + 40);
    pos += 56;
    for (const p of c.patches) {
      dv.setUint32(pos, p.addr >>> 0, true);
      dv.setUint32(pos + 4, p.bytes.length, true);
      out.set(p.bytes, pos + 8);
      pos += 8 + ((p.bytes.length + 3) & ~3);
    }
    if (c.fx) {
      out.set(c.fx, pos);
      pos += 512;
    }
  }
  return out;
}

export function decodeResults(buf: Uint8Array, cases: CaseInput[], fxDefault: Uint8Array): CaseResult[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (dv.getUint32(0, true) !== MAGIC_OUT) throw new Error('bad results magic');
  const n = dv.getUint32(4, true);
  if (n !== cases.length) throw new Error(`harness returned ${n} results for ${cases.length} cases`);
  const res: CaseResult[] = [];
  let pos = 8;
  for (let k = 0; k < n; k++) {
    const u = (o: number) => dv.getUint32(pos + o, true);
    const gpr = new Uint32Array(8);
    for (let i = 0; i < 8; i++) gpr[i] = u(24 + 4 * i);
    const r: CaseResult = {
      vector: dv.getInt32(pos, true),
      signo: u(4),
      sicode: u(8),
      err: u(12),
      faultAddr: u(16),
      eip: u(20),
      gpr,
      eflags: u(56),
      fx: fxDefault,
      changes: new Map(),
    };
    const hasFx = u(60) !== 0;
    const nchg = u(64);
    pos += 68;
    for (let i = 0; i < nchg; i++, pos += 8) r.changes.set(dv.getUint32(pos, true), dv.getUint32(pos + 4, true));
    if (hasFx) {
      r.fx = buf.slice(pos, pos + 512);
      pos += 512;
    } else {
      // Unchanged (in every compared field) from the input image.
      r.fx = cases[k].fx ?? fxDefault;
    }
    res.push(r);
  }
  if (pos !== buf.length) throw new Error('trailing bytes in results');
  return res;
}
