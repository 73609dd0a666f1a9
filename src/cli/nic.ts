// `trapeze run --nic …`: parses the network options (QEMU-like vocabulary) into NIC models plugged into the
// VM's PCI bus and VDE backends on the host side.
//
//   --nic user[,net=A.B.C.0/24][,hostfwd=tcp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT]…
//                         user-mode NAT (vde_plug slirp://); net= moves slirp off 10.0.2.0/24, so several
//                         user NICs in one guest can each have their own subnet
//   --nic switch=NAME     a vde_switch under the cache directory, started when absent
//   --nic tap=IFNAME      a host tap interface (needs CAP_NET_ADMIN)
//   --nic vde=URL         any vde_plug URL
// each with optional ,model=e1000|rtl8139|rtl8139cp|ne2k_pci|virtio and ,mac=52:54:00:…

import { join } from 'node:path';
import { UserError } from './errors.ts';
import type { PcMachine } from '../vmm/pc.ts';
import type { NetBackend } from '../devices/net/backend.ts';
import { formatNicStats, type NicStats } from '../devices/net/ethernet.ts';
import { E1000 } from '../devices/net/e1000.ts';
import { Rtl8139 } from '../devices/net/rtl8139.ts';
import { Ne2kPci } from '../devices/net/ne2k-pci.ts';
import { ensureSwitch, VdeBackend } from '../backends/net/vde.ts';
import { VirtioPci } from '../devices/virtio/pci-transport.ts';
import { VirtioNet } from '../devices/virtio/net.ts';

/** rtl8139 reports PCI revision 0x10 (Linux's 8139too, C mode); rtl8139cp is the same chip with revision 0x20,
 *  like QEMU's rtl8139, which Linux hands to 8139cp (C+ mode: descriptor rings, offloads). */
export const NIC_MODELS = ['e1000', 'rtl8139', 'rtl8139cp', 'ne2k_pci', 'virtio'] as const;
export type NicModel = (typeof NIC_MODELS)[number];

export interface NicSpec {
  kind: 'user' | 'switch' | 'tap' | 'vde';
  /** Switch name, tap interface or VDE URL. */
  target: string;
  model: NicModel;
  mac: number[];
  /** slirp port forwards as vde_plug writes them: `tcpfwd=[HOSTADDR:]HOSTPORT:GUESTADDR:GUESTPORT`. */
  forwards: { proto: 'tcp' | 'udp'; spec: string }[];
  /** user: the first three octets of the /24 slirp serves when not its default 10.0.2.0/24 (`net=`). */
  net?: string;
}

/** slirp's own network (libslirp's default) when no net= is given. */
const SLIRP_NET = '10.0.2';
/** Host numbers QEMU and libslirp use inside the slirp network: the gateway (which reaches the host's
 *  loopback), the DNS proxy, and the first address its DHCP server hands out, where forwards go when no
 *  guest address is given. */
const SLIRP_HOST = 2, SLIRP_DNS = 3, SLIRP_DHCP_START = 15;

export function parseMac(s: string): number[] {
  const parts = s.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) throw new UserError(`--nic mac=${s}: not a MAC address like 52:54:00:12:34:56`);
  const mac = parts.map((p) => parseInt(p, 16));
  if (mac[0] & 1) throw new UserError(`--nic mac=${s}: a multicast address cannot be a NIC's own address (first byte must be even)`);
  return mac;
}

function parseHostfwd(v: string, guest: string): { proto: 'tcp' | 'udp'; spec: string } {
  // QEMU syntax: [tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport
  const m = /^(tcp|udp)?:([0-9.]*):(\d+)-([0-9.]*):(\d+)$/.exec(v);
  if (!m) throw new UserError(`--nic hostfwd=${v}: expected tcp::HOSTPORT-:GUESTPORT (optionally with addresses)`);
  const [, proto = 'tcp', haddr, hport, gaddr, gport] = m;
  for (const p of [hport, gport]) if (Number(p) < 1 || Number(p) > 65535) throw new UserError(`--nic hostfwd=${v}: port ${p} out of range`);
  return { proto: proto as 'tcp' | 'udp', spec: `${haddr ? `${haddr}:` : ''}${hport}:${gaddr || guest}:${gport}` };
}

/** Parses one --nic value; `index` picks the default MAC so several NICs differ. */
export function parseNic(value: string, index: number): NicSpec {
  const items = value.split(',').filter((s) => s !== '');
  if (!items.length) throw new UserError('--nic needs a value, e.g. --nic user');
  const spec: NicSpec = { kind: 'user', target: '', model: 'e1000', mac: [0x52, 0x54, 0x00, 0x12, 0x34, (0x56 + index) & 0xff], forwards: [] };
  const [first, ...rest] = items;
  const eq = first.indexOf('=');
  const key = eq < 0 ? first : first.slice(0, eq), val = eq < 0 ? '' : first.slice(eq + 1);
  if (key === 'user' && eq < 0) spec.kind = 'user';
  else if ((key === 'switch' || key === 'tap' || key === 'vde') && val) { spec.kind = key; spec.target = val; }
  else throw new UserError(`--nic ${value}: starts with user, switch=NAME, tap=IFNAME or vde=URL`);
  if (spec.kind === 'switch' && !/^[A-Za-z0-9_.-]+$/.test(spec.target)) throw new UserError(`--nic switch=${spec.target}: a switch name is letters, digits, '.', '_' and '-'`);
  if (spec.kind === 'tap' && !/^[A-Za-z0-9_.-]{1,15}$/.test(spec.target)) throw new UserError(`--nic tap=${spec.target}: not an interface name`);
  const hostfwds: string[] = [];
  for (const item of rest) {
    const i = item.indexOf('=');
    const k = i < 0 ? item : item.slice(0, i), v = i < 0 ? '' : item.slice(i + 1);
    if (k === 'model') {
      if (!(NIC_MODELS as readonly string[]).includes(v)) throw new UserError(`--nic model=${v}: one of ${NIC_MODELS.join(', ')}`);
      spec.model = v as NicModel;
    } else if (k === 'mac') spec.mac = parseMac(v);
    else if (k === 'hostfwd') {
      if (spec.kind !== 'user') throw new UserError('--nic hostfwd= only applies to user networking');
      hostfwds.push(v);
    } else if (k === 'net') {
      if (spec.kind !== 'user') throw new UserError('--nic net= only applies to user networking');
      // vde_plug URLs separate options with '/', so slirp's addr= cannot carry a prefix length: slirp then
      // serves a /24, the only size net= offers.
      const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.0(?:\/24)?$/.exec(v);
      if (!m || m.slice(1).some((o) => Number(o) > 255)) throw new UserError(`--nic net=${v}: expected a /24 network like 10.0.3.0/24`);
      spec.net = m.slice(1, 4).map(Number).join('.');
    } else throw new UserError(`--nic ${value}: unknown option '${k}' (model=, mac=, hostfwd=, net=)`);
  }
  spec.forwards = hostfwds.map((v) => parseHostfwd(v, `${spec.net ?? SLIRP_NET}.${SLIRP_DHCP_START}`));
  return spec;
}

/** The vde_plug URL a spec connects to. */
export function vdeUrl(spec: NicSpec, cacheDir: string, log: (l: string) => void): string {
  switch (spec.kind) {
    case 'user': {
      const tcp = spec.forwards.filter((f) => f.proto === 'tcp').map((f) => f.spec);
      const udp = spec.forwards.filter((f) => f.proto === 'udp').map((f) => f.spec);
      const n = spec.net;
      const net = n ? `/addr=${n}.${SLIRP_HOST}/dhcp=${n}.${SLIRP_DHCP_START}/vnameserver=${n}.${SLIRP_DNS}` : '';
      return `slirp://${net}${tcp.length ? `/tcpfwd=${tcp.join(',')}` : ''}${udp.length ? `/udpfwd=${udp.join(',')}` : ''}`;
    }
    case 'switch': return ensureSwitch(join(cacheDir, 'vde', spec.target), log);
    case 'tap': return `tap://${spec.target}`;
    case 'vde': return spec.target;
  }
}

export interface NicDevice { name: string; stats: NicStats }

/** Attach hook for PcConfig.devices: builds the model on the machine's PCI bus. */
export function nicAttach(spec: NicSpec, index: number, backend: NetBackend, wake: () => void, out: NicDevice[]): (m: PcMachine) => void {
  return (m) => {
    const name = `${spec.model}.${index}`;
    const common = { mem: m.mem, clock: m.clock, backend, mac: spec.mac, wake, name };
    let dev, stats: NicStats;
    switch (spec.model) {
      case 'e1000': dev = new E1000(common); stats = dev.stats; break;
      case 'rtl8139': dev = new Rtl8139(common); stats = dev.stats; break;
      case 'rtl8139cp': dev = new Rtl8139({ ...common, cplus: true }); stats = dev.stats; break;
      case 'ne2k_pci': dev = new Ne2kPci(common); stats = dev.stats; break;
      case 'virtio': {
        const model = new VirtioNet(backend, spec.mac, wake);
        dev = new VirtioPci(name, model, { mem: m.mem, msi: m.msiSink(name) });
        stats = model.stats;
        break;
      }
    }
    m.pci.add(dev, m.allocatePciSlot());
    out[index] = { name, stats }; // a rebooted machine replaces its devices
  };
}

/** Everything `trapeze run` needs for its --nic options. */
export class NicSetup {
  readonly devices: ((m: PcMachine) => void)[] = [];
  readonly nics: NicDevice[] = [];
  private readonly backends: VdeBackend[] = [];
  private wakeFn: (() => void) | null = null;

  constructor(values: string[], cacheDir: string, log: (l: string) => void) {
    const specs = values.map((v, i) => parseNic(v, i)); // every option is checked before anything starts
    try {
      specs.forEach((spec, i) => {
        const be = new VdeBackend(vdeUrl(spec, cacheDir, log), { log });
        this.backends.push(be);
        this.devices.push(nicAttach(spec, i, be, () => this.wake(), this.nics));
      });
    } catch (e) {
      this.close();
      throw e instanceof UserError ? e : new UserError((e as Error).message);
    }
  }

  /** A sleep the NICs cut short when a frame arrives, so a halted vCPU takes its interrupt at once. */
  sleep = (ms: number): Promise<void> => new Promise((resolve) => {
    const t = setTimeout(() => { this.wakeFn = null; resolve(); }, ms);
    this.wakeFn = () => { clearTimeout(t); this.wakeFn = null; resolve(); };
  });

  private wake(): void { this.wakeFn?.(); }

  statsLines(): string[] { return this.nics.map((n) => `trapeze: ${formatNicStats(n.name, n.stats)}`); }

  close(): void { for (const b of this.backends) b.close(); }
}
