// ELF32 executable parsing for the user-mode runner (System V gABI "Object Files" chapter, ELF header and
// program header; i386 psABI for EM_386). Only what loading a static executable needs.

export const PT_LOAD = 1;
export const PT_INTERP = 3;
export const PT_PHDR = 6;
export const PT_TLS = 7;
export const PT_GNU_STACK = 0x6474e551;

export const ET_EXEC = 2;
export const ET_DYN = 3;
const EM_386 = 3;

export interface ProgramHeader {
  type: number;
  offset: number;
  vaddr: number;
  filesz: number;
  memsz: number;
  flags: number;
  align: number;
}

export interface Elf32 {
  type: number;
  entry: number;
  phoff: number;
  phentsize: number;
  phnum: number;
  phdrs: ProgramHeader[];
  /** The PT_INTERP path, when the executable wants a dynamic loader. */
  interp?: string;
}

export class ElfError extends Error {}

/** Parses and validates the ELF header and program headers of an i386 executable. */
export function parseElf32(file: Uint8Array): Elf32 {
  if (file.length < 52) throw new ElfError('file too short for an ELF header');
  if (file[0] !== 0x7f || file[1] !== 0x45 || file[2] !== 0x4c || file[3] !== 0x46) throw new ElfError('not an ELF file (bad magic)');
  // e_ident[EI_CLASS] = ELFCLASS32 (1), e_ident[EI_DATA] = ELFDATA2LSB (1).
  if (file[4] !== 1) throw new ElfError(`not a 32-bit ELF (EI_CLASS ${file[4]}); only i386 executables run here`);
  if (file[5] !== 1) throw new ElfError('not a little-endian ELF');
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const type = dv.getUint16(16, true);
  const machine = dv.getUint16(18, true);
  if (machine !== EM_386) throw new ElfError(`ELF machine ${machine} is not EM_386 (3)`);
  if (type !== ET_EXEC && type !== ET_DYN) throw new ElfError(`ELF type ${type} is not an executable (ET_EXEC or ET_DYN)`);
  const entry = dv.getUint32(24, true);
  const phoff = dv.getUint32(28, true);
  const phentsize = dv.getUint16(42, true);
  const phnum = dv.getUint16(44, true);
  if (phentsize !== 32) throw new ElfError(`unexpected e_phentsize ${phentsize} (Elf32_Phdr is 32 bytes)`);
  if (phoff + phnum * phentsize > file.length) throw new ElfError('program headers lie outside the file');
  const phdrs: ProgramHeader[] = [];
  let interp: string | undefined;
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * 32;
    const ph: ProgramHeader = {
      type: dv.getUint32(o, true),
      offset: dv.getUint32(o + 4, true),
      vaddr: dv.getUint32(o + 8, true),
      filesz: dv.getUint32(o + 16, true),
      memsz: dv.getUint32(o + 20, true),
      flags: dv.getUint32(o + 24, true),
      align: dv.getUint32(o + 28, true),
    };
    if (ph.type === PT_LOAD) {
      if (ph.offset + ph.filesz > file.length) throw new ElfError(`PT_LOAD ${i} extends past the end of the file`);
      if (ph.filesz > ph.memsz) throw new ElfError(`PT_LOAD ${i} has p_filesz > p_memsz`);
    }
    if (ph.type === PT_INTERP) {
      const end = file.indexOf(0, ph.offset);
      interp = Buffer.from(file.subarray(ph.offset, end < 0 ? ph.offset + ph.filesz : end)).toString('latin1');
    }
    phdrs.push(ph);
  }
  return { type, entry, phoff, phentsize, phnum, phdrs, interp };
}
