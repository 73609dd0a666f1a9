// ACPI tables (checksums, pointers, contents that must agree with the devices), the DSDT checked by an
// independent reader (ACPICA's disassembler, `iasl -d`, skipped when acpica-tools is not installed), and
// the e820 map.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildAcpiTables, buildDsdt, type AcpiOptions } from '../src/machine/acpi-tables.ts';
import { buildE820, encodeE820, E820_RAM, E820_RESERVED } from '../src/machine/e820.ts';

const haveIasl = spawnSync('sh', ['-c', 'command -v iasl'], { stdio: 'ignore' }).status === 0;
const opts: AcpiOptions = { base: 0xe0000, cpus: 2, pciMmio: { base: 0xc0000000, end: 0xfebfffff } };

function build() {
  const mem = new Uint8Array(0x100000);
  const r = buildAcpiTables({ writeBytes: (a, d) => mem.set(d, a) }, opts);
  const dv = new DataView(mem.buffer);
  return { mem, dv, r };
}

const sum = (b: Uint8Array): number => b.reduce((s, x) => s + x, 0) & 0xff;
const sig = (mem: Uint8Array, a: number): string => String.fromCharCode(...mem.subarray(a, a + 4));

test('RSDP is findable by the BIOS-area scan and every table checksums to zero', () => {
  const { mem, dv, r } = build();
  // Linux scans 0xE0000-0xFFFFF on 16-byte boundaries for "RSD PTR ".
  let found = -1;
  for (let a = 0xe0000; a < 0x100000; a += 16) if (String.fromCharCode(...mem.subarray(a, a + 8)) === 'RSD PTR ') { found = a; break; }
  assert.equal(found, r.rsdp);
  assert.equal(sum(mem.subarray(r.rsdp, r.rsdp + 20)), 0);
  assert.equal(sum(mem.subarray(r.rsdp, r.rsdp + 36)), 0);
  assert.equal(mem[r.rsdp + 15], 2);
  const rsdt = dv.getUint32(r.rsdp + 16, true), xsdt = Number(dv.getBigUint64(r.rsdp + 24, true));
  assert.equal(sig(mem, rsdt), 'RSDT');
  assert.equal(sig(mem, xsdt), 'XSDT');
  for (const [name, t] of Object.entries(r.tables)) {
    if (name === 'RSDP' || name === 'FACS') continue;
    assert.equal(sig(mem, t.addr), name);
    assert.equal(dv.getUint32(t.addr + 4, true), t.length);
    assert.equal(sum(mem.subarray(t.addr, t.addr + t.length)), 0, `${name} checksum`);
  }
  const entries = (dv.getUint32(rsdt + 4, true) - 36) / 4;
  const names = Array.from({ length: entries }, (_, i) => sig(mem, dv.getUint32(rsdt + 36 + 4 * i, true)));
  assert.deepEqual(names.sort(), ['APIC', 'FACP']);
  assert.equal(r.tables.FACS.addr % 64, 0);
  assert.ok(r.end <= 0x100000);
});

test('FADT points at the PIIX4 PM block, SCI 9 and the 0xCF9 reset register', () => {
  const { mem, dv, r } = build();
  const f = r.tables.FACP.addr;
  assert.equal(mem[f + 8], 3);
  assert.equal(dv.getUint32(f + 36, true), r.tables.FACS.addr);
  assert.equal(dv.getUint32(f + 40, true), r.tables.DSDT.addr);
  assert.equal(dv.getUint16(f + 46, true), 9);
  assert.equal(dv.getUint32(f + 56, true), 0x600);
  assert.equal(dv.getUint32(f + 64, true), 0x604);
  assert.equal(dv.getUint32(f + 76, true), 0x608);
  assert.equal(mem[f + 91], 4);
  assert.equal(dv.getUint32(f + 112, true) & (1 << 10), 1 << 10, 'RESET_REG_SUP');
  assert.equal(dv.getUint32(f + 112, true) & (1 << 8), 0, '24-bit PM timer');
  assert.equal(Number(dv.getBigUint64(f + 120, true)), 0xcf9);
  assert.equal(mem[f + 128], 6);
  assert.equal(Number(dv.getBigUint64(f + 140, true)), r.tables.DSDT.addr);
});

test('MADT: two local APICs, the I/O APIC, IRQ0→GSI2 and a level SCI override', () => {
  const { mem, dv, r } = build();
  const m = r.tables.APIC;
  assert.equal(dv.getUint32(m.addr + 36, true), 0xfee00000);
  const seen: string[] = [];
  for (let p = m.addr + 44; p < m.addr + m.length; p += mem[p + 1]) {
    const t = mem[p];
    if (t === 0) seen.push(`lapic ${mem[p + 3]}`);
    if (t === 1) seen.push(`ioapic ${dv.getUint32(p + 4, true).toString(16)} ${dv.getUint32(p + 8, true)}`);
    if (t === 2) seen.push(`iso ${mem[p + 3]}->${dv.getUint32(p + 4, true)} ${dv.getUint16(p + 8, true)}`);
    if (t === 4) seen.push(`nmi lint${mem[p + 5]}`);
  }
  assert.deepEqual(seen, ['lapic 0', 'lapic 1', 'ioapic fec00000 0', 'iso 0->2 0', 'iso 9->9 13', 'nmi lint1']);
});

test('DSDT disassembles with iasl and contains _S5, PCI0 with _CRS/_PRT and the ISA devices', { skip: !haveIasl && 'iasl (acpica-tools) not installed' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'trapeze-acpi-'));
  try {
    writeFileSync(join(dir, 'dsdt.aml'), buildDsdt(opts));
    const res = spawnSync('iasl', ['-d', 'dsdt.aml'], { cwd: dir, encoding: 'utf8' });
    assert.equal(res.status, 0, res.stdout + res.stderr);
    // Without the disassembler's comments, so the patterns see only the ASL.
    const dsl = readFileSync(join(dir, 'dsdt.dsl'), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/[^\n]*/g, '');
    assert.match(dsl, /Name \(\\_S5, Package \(0x04\)\s*\{\s*Zero,\s*Zero,/);
    assert.match(dsl, /Method \(\\_PIC, 1, NotSerialized\)\s*\{\s*PICF = Arg0/);
    assert.match(dsl, /Device \(PCI0\)\s*\{\s*Name \(_HID, EisaId \("PNP0A03"\)/);
    assert.match(dsl, /WordBusNumber \(ResourceProducer, MinFixed, MaxFixed, PosDecode,\s*0x0000,\s*0x0000,\s*0x00FF/);
    assert.match(dsl, /0xC0000000,\s*0xFEBFFFFF/);
    assert.match(dsl, /If \(PICF\)\s*\{\s*Return \(PRTA\)\s*\}\s*Return \(PRTP\)/);
    // Slot 3 INTA# is PIRQC#: IRQ 11 in PIC mode, GSI 18 in APIC mode.
    assert.match(dsl, /Name \(PRTP, Package \(0x7C\)[\s\S]*?0x0003FFFF,\s*Zero,\s*Zero,\s*0x0B/);
    assert.match(dsl, /Name \(PRTA, Package \(0x7C\)[\s\S]*?0x0003FFFF,\s*Zero,\s*Zero,\s*0x12/);
    for (const id of ['PNP0B00', 'PNP0501', 'PNP0303', 'PNP0F13']) assert.ok(dsl.includes(`EisaId ("${id}")`), id);
    assert.match(dsl, /IO \(Decode16,\s*0x03F8,\s*0x03F8,\s*0x08,\s*0x08,\s*\)\s*IRQNoFlags \(\)\s*\{4\}/);
    // Recompiling the disassembly without optimisations must give the same AML: nothing was lost or misread.
    const rc = spawnSync('iasl', ['-oa', '-p', 'again', 'dsdt.dsl'], { cwd: dir, encoding: 'utf8' });
    assert.equal(rc.status, 0, rc.stdout + rc.stderr);
    assert.deepEqual(readFileSync(join(dir, 'again.aml')).subarray(36), Buffer.from(buildDsdt(opts)).subarray(36));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('e820: base memory, reserved BIOS area, RAM above 1 MiB, APIC pages reserved', () => {
  const e = buildE820({ ramSize: 256 << 20 });
  assert.deepEqual(e, [
    { addr: 0, size: 0x9fc00, type: E820_RAM },
    { addr: 0x9fc00, size: 0x400, type: E820_RESERVED },
    { addr: 0xe0000, size: 0x20000, type: E820_RESERVED },
    { addr: 0x100000, size: (256 << 20) - 0x100000, type: E820_RAM },
    { addr: 0xfec00000, size: 0x1000, type: E820_RESERVED },
    { addr: 0xfee00000, size: 0x1000, type: E820_RESERVED },
  ]);
  const raw = encodeE820(e);
  assert.equal(raw.length, 120);
  const dv = new DataView(raw.buffer);
  assert.equal(Number(dv.getBigUint64(60, true)), 0x100000);
  assert.equal(dv.getUint32(76, true), E820_RAM);
});
