// The workloads, as shell command lines typed on the guest's serial console. Every engine gets the same
// bytes. Each line prints `@@BEGIN name` before and `@@END name <status>` after its command; the host takes
// a timestamp as each marker line arrives. The markers are written `@@B''EGIN` in the typed text so the
// shell's echo of the command line never looks like a marker; only the output of `echo` does.

export interface Workload {
  name: string;
  /** What it stresses, for the table's legend and docs/bench.md. */
  what: string;
  /** The guest command (sh syntax, one line), full size and --quick size. */
  full: string;
  quick: string;
}

export const WORKLOADS: Workload[] = [
  {
    name: 'sha256',
    what: 'integer ALU: sha256sum of zeros from dd through a pipe',
    full: 'dd if=/dev/zero bs=1M count=32 2>/dev/null | sha256sum',
    quick: 'dd if=/dev/zero bs=1M count=4 2>/dev/null | sha256sum',
  },
  {
    name: 'gzip',
    what: 'compression loop with memory traffic: gzip -1 of zeros',
    full: 'dd if=/dev/zero bs=1M count=16 2>/dev/null | gzip -1 | wc -c',
    quick: 'dd if=/dev/zero bs=1M count=2 2>/dev/null | gzip -1 | wc -c',
  },
  {
    name: 'awk',
    what: 'interpreter loop with floating point (x87/SSE): busybox awk',
    full: "awk 'BEGIN{s=0;for(i=0;i<2000000;i++)s+=i*i;print s}'",
    quick: "awk 'BEGIN{s=0;for(i=0;i<200000;i++)s+=i*i;print s}'",
  },
  {
    name: 'forkexec',
    what: 'process creation: fork+exec of /bin/true from a shell loop (page tables, COW, exec)',
    full: 'i=0; while [ $i -lt 200 ]; do /bin/true; i=$((i+1)); done; echo $i',
    quick: 'i=0; while [ $i -lt 40 ]; do /bin/true; i=$((i+1)); done; echo $i',
  },
  {
    name: 'tmpfs',
    what: 'page faults and page cache: write a file into a fresh tmpfs, read it back, delete it',
    full: 'mkdir -p /mnt/b && mount -t tmpfs tmpfs /mnt/b && dd if=/dev/zero of=/mnt/b/f bs=64k count=1024 2>/dev/null && dd if=/mnt/b/f of=/dev/null bs=4k 2>/dev/null && rm /mnt/b/f && umount /mnt/b && echo ok',
    quick: 'mkdir -p /mnt/b && mount -t tmpfs tmpfs /mnt/b && dd if=/dev/zero of=/mnt/b/f bs=64k count=128 2>/dev/null && dd if=/mnt/b/f of=/dev/null bs=4k 2>/dev/null && rm /mnt/b/f && umount /mnt/b && echo ok',
  },
  {
    name: 'syscall',
    what: 'system call entry/exit: dd with 1-byte blocks (one read and one write syscall per byte)',
    full: 'dd if=/dev/zero of=/dev/null bs=1 count=200000 2>&1 | head -1',
    quick: 'dd if=/dev/zero of=/dev/null bs=1 count=20000 2>&1 | head -1',
  },
  {
    name: 'pipe',
    what: 'context switches: 4 KiB blocks through a three-process pipeline',
    full: 'dd if=/dev/zero bs=4k count=16384 2>/dev/null | cat | cat | wc -c',
    quick: 'dd if=/dev/zero bs=4k count=2048 2>/dev/null | cat | cat | wc -c',
  },
];

/** The line typed on the console for one workload. */
export function commandLine(w: Workload, quick: boolean): string {
  return `echo @@B''EGIN ${w.name}; ${quick ? w.quick : w.full}; echo @@E''ND ${w.name} $?`;
}

/** The guest's /init prints this line once it has loaded drivers, just before it starts the shell. */
export const BANNER = 'Trapeze guest:';

// ---------------------------------------------------------------------------------------------- disks
//
// The disk section boots each engine with two fresh scratch raw images, one on virtio-blk (/dev/vda) and one
// on PIIX IDE (/dev/sda), and moves data with dd on the raw block devices. O_DIRECT (busybox dd's
// oflag=direct / iflag=direct) takes the guest's page cache out of the path, so every MiB crosses the
// virtual disk controller; the write comes first, so the read reads back blocks the image file has.

/** A disk workload: `mib` MiB (`quickMib` with --quick) through one interface in one direction. */
export interface DiskWorkload extends Workload {
  iface: 'virtio' | 'ide';
  op: 'write' | 'read';
  mib: number;
  quickMib: number;
  /** The device whose counters (`trapeze run` SIGUSR2 dump) are its traps: the controller's name there. */
  counterDevice: string;
}

/** Size of each scratch image; the workloads stay inside it. */
export const DISK_IMAGE_MIB = 128;

function diskWorkload(iface: 'virtio' | 'ide', op: 'write' | 'read', mib: number, quickMib: number): DiskWorkload {
  const dev = iface === 'virtio' ? '/dev/vda' : '/dev/sda';
  const dd = (n: number): string => op === 'write'
    ? `dd if=/dev/zero of=${dev} bs=1M count=${n} oflag=direct 2>/dev/null && echo ok`
    : `dd if=${dev} of=/dev/null bs=1M count=${n} iflag=direct 2>/dev/null && echo ok`;
  return {
    name: `${iface}-${op}`,
    what: `sequential ${op} of ${mib} MiB (--quick ${quickMib}) in 1 MiB blocks with O_DIRECT through ${iface === 'virtio' ? 'virtio-blk' : 'PIIX IDE (ata_piix, bus master DMA)'}`,
    full: dd(mib), quick: dd(quickMib), iface, op, mib, quickMib,
    counterDevice: iface === 'virtio' ? 'virtio-blk0' : 'piix3-ide',
  };
}

export const DISK_WORKLOADS: DiskWorkload[] = [
  // The whole image: at QEMU's speed a smaller transfer takes a few tens of milliseconds, near the method's resolution.
  diskWorkload('virtio', 'write', DISK_IMAGE_MIB, 16),
  diskWorkload('virtio', 'read', DISK_IMAGE_MIB, 16),
  diskWorkload('ide', 'write', DISK_IMAGE_MIB, 16),
  diskWorkload('ide', 'read', DISK_IMAGE_MIB, 16),
];

// ---------------------------------------------------------------------------------------------- network
//
// The network section boots each engine once per NIC model, with that one NIC on a private VDE network whose
// only other port is slirp (user-mode NAT, `vde_plug vde://SWITCH slirp://`): the guest's udhcpc gets
// 10.0.2.15, and slirp's gateway 10.0.2.2 reaches the host's 127.0.0.1, where the bench listens. The guest
// sends zeros with busybox `nc` (the host side times and counts them) and pings the gateway, which slirp
// answers itself.

/** The NIC models of `trapeze run --nic …,model=M`, with what the QEMU run uses for the same chip. */
export interface NetModel {
  model: 'e1000' | 'rtl8139' | 'rtl8139cp' | 'ne2k_pci' | 'virtio';
  /** The Linux driver that should bind it (checked against the guest's sysfs). */
  driver: string;
  /** QEMU's `-device` for the same chip, or why QEMU has none. */
  qemu: { device: string } | { none: string };
  /** A note for the table (printed under it). */
  note?: string;
}

export const NET_MODELS: NetModel[] = [
  { model: 'e1000', driver: 'e1000', qemu: { device: 'e1000' } },
  {
    model: 'rtl8139', driver: '8139too',
    qemu: { none: "QEMU's rtl8139 reports PCI revision 0x20, which 8139too refuses (it binds 8139cp: the rtl8139cp row)" },
  },
  {
    model: 'rtl8139cp', driver: '8139cp', qemu: { device: 'rtl8139' },
    note: "Trapeze's rtl8139cp and QEMU's rtl8139 are both the RTL8139C+ (revision 0x20), which Linux drives with 8139cp",
  },
  { model: 'ne2k_pci', driver: 'ne2k-pci', qemu: { device: 'ne2k_pci' } },
  { model: 'virtio', driver: 'virtio_net', qemu: { device: 'virtio-net-pci' } },
];

/** The guest's MAC on every engine, so slirp's DHCP lease is the same. */
export const NET_MAC = '52:54:00:12:34:56';
/** The guest address slirp's DHCP hands out and its gateway (the host's loopback seen from the guest). */
export const NET_GUEST = '10.0.2.15';
export const NET_GATEWAY = '10.0.2.2';
export const NET_TX_MIB = 64;
export const NET_TX_QUICK_MIB = 8;
export const NET_PINGS = 20;

/** A network workload; `counterDevice` (net-tx only) is the NIC's row in Trapeze's counter dump. */
export interface NetWorkload extends Workload { counterDevice?: string }

/**
 * The three lines typed per boot: wait for the DHCP lease (and report which interfaces and driver the guest
 * has), send NET_TX_MIB MiB to the host's `port`, ping the gateway. net-tx prints the interface's packet
 * counters (the same numbers /proc/net/dev shows) before and after the transfer, as `pk RX TX`.
 */
export function netWorkloads(m: NetModel, port: number | string): NetWorkload[] {
  const up = 'i=0; while [ $i -lt 120 ] && ! ifconfig eth0 2>/dev/null | grep -q "inet addr:10\\.0\\.2\\.15 "; do sleep 1; i=$((i+1)); done; ' +
    'echo ifs $(ls /sys/class/net) driver $(basename $(readlink /sys/class/net/eth0/device/driver)) waited $i; ifconfig eth0 | grep -q "inet addr:10\\.0\\.2\\.15 "';
  const pk = 'pk(){ echo pk $(cat /sys/class/net/eth0/statistics/rx_packets) $(cat /sys/class/net/eth0/statistics/tx_packets); }';
  // busybox nc shuts down its sending side at the end of its input and exits when the host closes.
  const tx = (mib: number): string => `${pk}; pk; dd if=/dev/zero bs=1M count=${mib} 2>/dev/null | nc ${NET_GATEWAY} ${port} && pk`;
  // Every echo's time is kept (the median is robust to a host hiccup; the summary line has min/avg/max).
  const ping = `ping -c ${NET_PINGS} -i 0.2 ${NET_GATEWAY} | grep -E 'seq=|round-trip|transmitted'`;
  return [
    { name: 'net-up', what: `DHCP lease ${NET_GUEST} on eth0 (udhcpc, started by /init at boot), interfaces and bound driver`, full: up, quick: up },
    {
      name: 'net-tx', what: `guest → host TCP: ${NET_TX_MIB} MiB (--quick ${NET_TX_QUICK_MIB}) of zeros from dd through busybox nc to a server in the bench on 127.0.0.1`,
      full: tx(NET_TX_MIB), quick: tx(NET_TX_QUICK_MIB), counterDevice: `${m.model}.0`,
    },
    { name: 'net-ping', what: `round-trip time: ${NET_PINGS} ICMP echoes to the gateway ${NET_GATEWAY}, 0.2 s apart (slirp answers them)`, full: ping, quick: ping },
  ];
}
