// `--drive file=PATH,format=raw,if=virtio[,readonly=on]`, in QEMU's -drive vocabulary, and the virtio
// device options of `trapeze run`. Image formats and disk interfaces are tables: adding one is one entry.

import { RawImage } from '../backends/disk/raw.ts';
import { Qcow2Image, openImage } from '../backends/disk/qcow2.ts';
import { attachIdeDisk } from '../devices/storage/piix-ide.ts';
import type { BlockBackend } from '../devices/block-backend.ts';
import { VirtioPci, type VirtioDeviceModel } from '../devices/virtio/pci-transport.ts';
import { VirtioBlk } from '../devices/virtio/blk.ts';
import type { PcMachine } from '../vmm/pc.ts';
import { UserError } from './errors.ts';

/** Opens an image of one format. */
type FormatOpener = (path: string, readOnly: boolean) => BlockBackend;
/** Builds the attach hook that plugs a disk into a new machine (called again after each reboot). */
type InterfaceAttacher = (disk: BlockBackend, index: number) => (m: PcMachine) => void;

export const FORMATS: Record<string, FormatOpener> = {
  raw: (path, readOnly) => RawImage.open(path, { readOnly }),
  qcow2: (path, readOnly) => Qcow2Image.open(path, { readOnly }),
};

export const INTERFACES: Record<string, InterfaceAttacher> = {
  virtio: (disk, index) => attachVirtio(`virtio-blk${index}`, () => new VirtioBlk(disk, { serial: `trapeze-vd${String.fromCharCode(97 + index)}` })),
  // PIIX3 IDE: primary master, primary slave, secondary master, secondary slave (/dev/sda.. in the guest).
  ide: (disk, index) => {
    if (index > 3) throw new UserError('--drive if=ide: at most 4 IDE disks (two channels of two)');
    return attachIdeDisk(disk, index, (msg) => process.stderr.write(`trapeze: ${msg}\n`));
  },
};

/** An attach hook for a virtio-pci device in the next free slot, interrupting through the machine's APIC bus. */
export function attachVirtio(name: string, model: () => VirtioDeviceModel): (m: PcMachine) => void {
  return (m) => m.pci.add(new VirtioPci(name, model(), { mem: m.mem, msi: m.msiSink(name) }), m.allocatePciSlot());
}

/** `format` undefined: guessed from the file's first bytes, as QEMU does (see RawImage.open's `probed`). */
export interface DriveSpec { file: string; format?: string; interface: string; readOnly: boolean }

const KEYS = ['file', 'format', 'if', 'readonly'];

/** Splits QEMU's key=value,key=value syntax, where ",," is a literal comma inside a value. */
function splitOptions(spec: string): [string, string][] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < spec.length; i++) {
    if (spec[i] === ',' && spec[i + 1] === ',') { cur += ','; i++; } else if (spec[i] === ',') { parts.push(cur); cur = ''; } else cur += spec[i];
  }
  parts.push(cur);
  return parts.map((p) => {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new UserError(`--drive '${spec}': '${p}' is not key=value; e.g. --drive file=disk.img,format=raw,if=virtio`);
    return [p.slice(0, eq), p.slice(eq + 1)];
  });
}

export function parseDrive(spec: string): DriveSpec {
  const o = new Map<string, string>();
  for (const [k, v] of splitOptions(spec)) {
    if (!KEYS.includes(k)) throw new UserError(`--drive: unknown key '${k}' (known: ${KEYS.join(', ')})`);
    if (o.has(k)) throw new UserError(`--drive: '${k}' given twice`);
    o.set(k, v);
  }
  const file = o.get('file');
  if (!file) throw new UserError(`--drive '${spec}' needs file=PATH`);
  const format = o.get('format'), iface = o.get('if') ?? 'virtio', ro = o.get('readonly') ?? 'off';
  if (format !== undefined && !(format in FORMATS)) throw new UserError(`--drive: unknown format '${format}' (supported: ${Object.keys(FORMATS).join(', ')})`);
  if (!(iface in INTERFACES)) throw new UserError(`--drive: unknown interface if=${iface} (supported: ${Object.keys(INTERFACES).join(', ')})`);
  if (!['on', 'off', 'true', 'false'].includes(ro)) throw new UserError(`--drive: readonly=${ro} must be on or off`);
  return { file, format, interface: iface, readOnly: ro === 'on' || ro === 'true' };
}

export interface OpenedDrives {
  /** Attach hooks for PcConfig.devices. */
  devices: ((m: PcMachine) => void)[];
  close(): void;
}

/** Opens every drive's image; errors name the file and say what to do. */
export function openDrives(specs: string[]): OpenedDrives {
  const disks: BlockBackend[] = [];
  const devices: ((m: PcMachine) => void)[] = [];
  const perInterface = new Map<string, number>();
  try {
    for (const spec of specs) {
      const d = parseDrive(spec);
      let disk: BlockBackend;
      try {
        disk = d.format !== undefined ? FORMATS[d.format](d.file, d.readOnly) : openImage(d.file, { readOnly: d.readOnly });
      } catch (e) {
        if ((e as { userError?: boolean }).userError) throw new UserError((e as Error).message);
        throw new UserError(`cannot open drive ${d.file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      disks.push(disk);
      if (disk.size < 512) throw new UserError(`drive ${d.file} is ${disk.size} bytes, smaller than one 512-byte sector`);
      const index = perInterface.get(d.interface) ?? 0;
      perInterface.set(d.interface, index + 1);
      devices.push(INTERFACES[d.interface](disk, index));
    }
  } catch (e) {
    for (const d of disks) d.close();
    throw e;
  }
  return { devices, close: () => { for (const d of disks) d.close(); } };
}
