// The binary translator ("--cpu jit"): finds hot guest code, translates it into JavaScript functions
// (codegen.ts) cached by the physical address of their first byte plus the mode bits that change how
// the code decodes or runs, and dispatches between them and the interpreter, which stays the monitor for
// everything not inlined. See docs/jit.md for the design and the measurements.

import { CPU, CpuFault } from '../cpu/cpu.ts';
import { CS, IF, TF } from '../cpu/constants.ts';
import { x87MemDirect, x87RegDirect } from '../cpu/ops-x87.ts';
import { loadSegment } from '../cpu/system.ts';
import { names1, names2 } from '../cpu/optable.ts';
import { decode, type Insn } from './decode.ts';
import { EXIT_NAMES, Gen, groupSource, safeCallout, type GroupMember } from './codegen.ts';

/** A translated unit. */
interface Unit {
  fn: (c: CPU, J: Jit, budget: number) => number;
  /** Host pool offset of the first byte (the guest-physical address through the P2M table). */
  phys: number;
  eip: number;
  mode: number;
  csBase: number;
  csLimit: number;
  /**
   * Position-independent (Gen.pi: the CS limit is 4 GiB): the unit serves its bytes at any EIP with the
   * same page offset, so `eip` (the EIP it was translated at) is not part of its key.
   */
  pi: boolean;
  /**
   * Direct chaining: the unit that ran after each exit slot (see Gen.slots). Following a link costs a
   * few compares instead of a table lookup: the successor is valid while it is alive, its EIP matches
   * (for a position-independent unit any EIP does), and CS:EIP still maps through the TLB (readable at
   * this CPL) to its `phys`.
   * Mode, CPL, CS base and limit cannot change at a chainable exit, so they need no check.
   */
  succ: (Unit | null)[];
  /**
   * The successor before the last one, per slot: a RET or indirect jump alternates between a few targets
   * (a function called from two places), and a one-entry cache would miss on every switch.
   */
  alt: (Unit | null)[];
  /**
   * Per slot: the EIP `succ` (`alt`) was entered at minus the EIP this unit was entered at, that time (how
   * a group finds its members' EIPs; see Jit.group).
   */
  succD: Int32Array;
  altD: Int32Array;
  /** A group (several units in one function, see Jit.group): never reviewed or grouped again. */
  group: boolean;
  /** Another live unit starting at the same host offset under a different key (e.g. another mode). */
  nextSame: Unit | null;
  /** Times entered and guest instructions run (statistics: how much translated code is really hot). */
  runs: number;
  insns: number;
  length: number;
  /** Per slot: the offset from the entry of the Jcc whose taken side leaves through it, or NaN. */
  jccAt: Float64Array;
  /** Offsets from the entry of the Jccs whose taken side this unit follows (see Jit.review). */
  inverted: number[];
  /** Exits taken per slot during the review window (see Jit.review), else null. */
  exitCounts: Uint32Array | null;
}

/**
 * `Unit.phys` of a dropped unit: no CS:EIP translates to a negative host offset, so the dispatcher's
 * `phys` checks never match it again. A unit spanning pages stays listed under its other pages after
 * it is dropped through one of them.
 */
const DROPPED = -2;

/** Why the dispatcher ran an instruction on the interpreter instead of in a unit (statistics). */
const MISS_NOT_START = 0, MISS_TLB = 1, MISS_COLD = 2, MISS_UNTRANSLATABLE = 3, MISS_16BIT = 4, MISS_TF = 5, MISS_SHADOW = 6, MISS_SEGMENTS = 7;
const MISS_NAMES = ['not a block start', 'code page not in TLB', 'cold (not yet hot)', 'untranslatable start', '16-bit code', 'single-step (TF)', 'interrupt shadow',
  'segments no longer flat'];

const TABLE_BITS = 16;
const TABLE_SIZE = 1 << TABLE_BITS;
/**
 * Executions of a block start before it is translated. Translating cold code costs more than it saves:
 * besides our translation (~0.1-0.3 ms), a fresh JS function runs in V8's bytecode interpreter and then
 * its baseline tier (both slower than our own interpreter) until V8 has seen enough of it to optimise it,
 * and V8's optimising compiler competes with the guest for the host's two cores; each unit also holds
 * ~26 KB of V8 heap. Measured on the default guest (docs/jit.md): 64 translated 22,000 units for the boot;
 * 400 was worse than 1000 (boot 22-24 against 19-20 s). After the translator got faster per unit entry,
 * 1000 → 2500 took the boot from 17.0-18.8 to 15.2-16.3 s and 200 fork/execs from 4.8-5.6 to 3.6-4.4 s
 * (two runs each); 5000 was a little better again for those two, but the tmpfs workload (16,384 page
 * writes, each through the same kernel paths) took 2.1 s in one bench run against 1.5-1.8 s.
 */
const HOT = 2500;
/** Guest instructions per unit (bounds translation cost and interrupt latency of straight code). */
const MAX_INSNS = 96;
/** Code pages one unit may span (each page after the first costs one inline TLB check when entered). */
const MAX_PAGES = 16;
/**
 * Live units before the whole cache is flushed (bounds host memory: a unit costs ~26 KB of V8 heap —
 * source, bytecode, feedback and optimised code, with Sparkplug off (src/cli/v8-tuning.ts) — so this is
 * ~210 MB at most). The default guest's boot and the CPU bench workloads hold ~5,200.
 */
const MAX_UNITS = 8192;
/**
 * Runs after which a unit may be translated a second time along its hot path (see Jit.review): late
 * enough that only code that really runs is, and V8 has long optimised the first translation.
 */
const REVIEW_RUNS = 4096;
/** The last runs before REVIEW_RUNS whose exits are counted. */
const REVIEW_WINDOW = 1024;
/** Jccs a unit may follow on their taken side (each review adds some). */
const MAX_INVERTED = 4;

/**
 * Runs after which a unit becomes the entry of a group: one function holding it and the hot units it
 * leads to, which go on from one to the next without returning to the dispatcher (see Jit.group).
 */
const GROUP_RUNS = 500_000;
/** Members of one group, and the most JavaScript a group may have (V8 optimises functions up to 60 KB of bytecode). */
const GROUP_MEMBERS = 16;
const GROUP_SOURCE = 32_000;

export interface JitOptions {
  /** Block-start visits before translation (HOT). */
  hot?: number;
  /** Runs before a unit's review (REVIEW_RUNS). */
  reviewRuns?: number;
  /** Runs before a unit becomes a group's entry (GROUP_RUNS). */
  groupRuns?: number;
}

/** The target of a relative JMP, CALL or Jcc. */
const branchTarget = (d: Insn): number => (d.eip + d.len + d.imm) | 0;

const PARITY = new Uint8Array(256);
for (let i = 0; i < 256; i++) { let b = i, p = 1; while (b) { p ^= b & 1; b >>= 1; } PARITY[i] = p ? 4 : 0; }

export interface JitStats {
  unitsTranslated: number;
  /** Dispatches through a chain link, dispatches that looked a unit up in the table, links made. */
  chained: number;
  lookups: number;
  links: number;
  insnsTranslated: number;
  insnsInlined: number;
  /** Characters of generated JavaScript (V8 keeps each unit's source while the unit lives). */
  sourceChars: number;
  flushes: number;
  invalidatedFrames: number;
  invalidatedUnits: number;
  unitRuns: number;
  unitInsns: number;
  /** Units translated a second time along their hot path (review). */
  retranslated: number;
  /** Groups made (see Jit.group), and the units in them. */
  groups: number;
  groupMembers: number;
  interpreted: number;
  translateMs: number;
}

export class Jit {
  readonly cpu: CPU;
  private readonly table: (Unit | null)[] = new Array<Unit | null>(TABLE_SIZE).fill(null);
  private readonly heat = new Uint16Array(TABLE_SIZE);
  /** Slots whose unit was replaced by one from another address: only those can hide a unit in byPhys. */
  private readonly displaced = new Uint8Array(TABLE_SIZE);
  /** Host frame → units starting in it. */
  private readonly frameUnits = new Map<number, Unit[]>();
  /**
   * Host offset → the live units starting there (linked by nextSame): the authoritative store. `table`
   * is a direct-mapped cache in front of it; a unit displaced from its slot by another stays here and is
   * found again on the next lookup instead of being translated anew.
   */
  private readonly byPhys = new Map<number, Unit>();
  private readonly codeFrames: Uint8Array;
  /**
   * Host offsets where no unit can start (the first instruction crosses into the next page, or is a lone
   * monitor call such as IN or CLI). Remembered so that the heat counter does not bring them back every
   * HOT visits, and so that the instruction after one is treated as a block start: otherwise a loop whose
   * head crosses a page boundary ran entirely on the interpreter. Cleared on flushes and invalidations.
   */
  private readonly untranslatable = new Set<number>();
  /**
   * Per lookup-table slot: 1 when an untranslatable offset hashes there, so that a cold lookup consults
   * the set only then (a Set lookup is a hash-table probe of its own, on each of millions of cold lookups).
   */
  private readonly untranslatableSlot = new Uint8Array(TABLE_SIZE);
  /** Units in the hash table (reachable by dispatch). */
  private liveUnits = 0;
  /** Units still referenced from frameUnits (including ones displaced from the table): bounds memory. */
  private heldUnits = 0;
  /** Set when a write hit a frame with translated code; the running unit leaves after the instruction. */
  codeChanged = false;
  /** Instructions a faulting unit completed before the faulting one (set by the unit's catch block). */
  faultDone = 0;

  /**
   * A unit's fault handler (Gen.trap): records where the unit stopped and, when the unit passes them,
   * writes back its eight registers (those it never assigned are passed as R[i], unchanged), then hands
   * the exception back for the handler to rethrow. One shared call instead of the stores spelled out at
   * every access keeps each handler ~60 characters: a unit has one per memory access, and V8 parses,
   * compiles to bytecode and builds optimising-compiler graphs for all of them (docs/jit.md).
   */
  fault(err: unknown, eip: number, done: number, a?: number, b?: number, d?: number, e?: number, f?: number, g?: number, h?: number, i?: number): unknown {
    const c = this.cpu;
    c.prevEip = eip | 0;
    this.faultDone = done;
    if (a !== undefined) {
      const R = c.r32;
      R[0] = a; R[1] = b!; R[2] = d!; R[3] = e!; R[4] = f!; R[5] = g!; R[6] = h!; R[7] = i!;
    }
    return err;
  }
  /** Unit exits by reason (0..0x1ff: unit ended by calling the interpreter for that opcode). */
  readonly exits = new Float64Array(0x210);
  /** Calls into the interpreter from units, by opcode. */
  readonly callouts = new Float64Array(0x200);
  /** Chaining slot of the exit the last unit took (set by the unit; -1: not chainable). */
  ex = -1;
  /** Instructions interpreted outside units, by reason (MISS_*). */
  readonly misses = new Float64Array(MISS_NAMES.length);
  private missReason = 0;
  readonly stats: JitStats = { unitsTranslated: 0, chained: 0, lookups: 0, links: 0, insnsTranslated: 0, insnsInlined: 0, sourceChars: 0, flushes: 0, invalidatedFrames: 0, invalidatedUnits: 0, unitRuns: 0, unitInsns: 0, retranslated: 0, groups: 0, groupMembers: 0, interpreted: 0, translateMs: 0 };

  /** Called with each unit's entry EIP and generated source (debugging: see the code a block became). */
  onTranslate: ((eip: number, src: string) => void) | null = null;

  /** Block-start executions before translation (HOT by default; tests use 1 to translate everything). */
  readonly hot: number;

  /** Runs after which a unit may be translated again along its hot path (REVIEW_RUNS; tests use fewer). */
  readonly reviewRuns: number;
  /** Exits are counted from this many runs on, up to reviewRuns. */
  private readonly watchFrom: number;

  /** Runs after which a unit becomes the entry of a group (see group). */
  readonly groupRuns: number;

  constructor(cpu: CPU, opts: JitOptions = {}) {
    this.cpu = cpu;
    this.hot = Math.max(1, Math.min(0xffff, opts.hot ?? HOT));
    this.reviewRuns = Math.max(1, opts.reviewRuns ?? REVIEW_RUNS);
    this.watchFrom = Math.max(0, this.reviewRuns - REVIEW_WINDOW);
    this.groupRuns = Math.max(1, opts.groupRuns ?? GROUP_RUNS);
    const mem = cpu.mem;
    this.codeFrames = new Uint8Array(Math.ceil(mem.pool.length / 4096));
    mem.codeFrames = this.codeFrames;
    mem.onCodeWrite = (f) => this.invalidateFrame(f);
    cpu.jit = this;
  }

  /** Drops every unit (capacity, or explicit). */
  flush(): void {
    for (const us of this.frameUnits.values()) for (const u of us) this.drop(u);
    this.table.fill(null);
    this.heat.fill(0);
    this.displaced.fill(0);
    this.frameUnits.clear();
    this.byPhys.clear();
    this.untranslatable.clear();
    this.untranslatableSlot.fill(0);
    this.codeFrames.fill(0);
    this.liveUnits = 0;
    this.heldUnits = 0;
    this.stats.flushes++;
  }

  /** Drops a unit, keeping its run counts in the totals. */
  private drop(u: Unit): void {
    if (u.phys === DROPPED) return;
    this.stats.unitRuns += u.runs;
    this.stats.unitInsns += u.insns;
    kill(u);
  }

  /** A write reached host frame f, which holds translated code: drop its units and lift the protection. */
  invalidateFrame(f: number): void {
    const us = this.frameUnits.get(f);
    if (us) {
      for (const u of us) {
        if (u.phys === DROPPED) continue;
        this.remove(u);
        this.stats.invalidatedUnits++;
      }
      this.frameUnits.delete(f);
    }
    this.codeFrames[f] = 0;
    if (this.untranslatable.size !== 0) { this.untranslatable.clear(); this.untranslatableSlot.fill(0); }
    this.codeChanged = true;
    this.stats.invalidatedFrames++;
  }

  private mode(): number {
    const c = this.cpu;
    return (c.cs32 ? 1 : 0) | (c.ss32 ? 2 : 0) | (c.cpl << 2);
  }

  /**
   * The unit for the current CS:EIP, translating it if the block start is hot (`candidate`: we got
   * here by a jump, a unit exit or an event, not by falling through from an interpreted instruction).
   */
  private find(candidate: boolean): Unit | null {
    const c = this.cpu;
    const lin = (c.segBase[CS] + c.eip) | 0;
    const vpn = lin >>> 12;
    // The entry's linear page is looked up in the TLB at every dispatch, so a unit is only entered
    // through the current linear→physical mapping (CR3 writes, INVLPG and CR0/CR4 changes flush the TLB).
    if (!(c.tlbFlags[vpn] & c.rdMask)) { this.missReason = MISS_TLB; return null; }
    const phys = c.tlbHost[vpn] | (lin & 0xfff);
    const s = slot(phys);
    const u = this.table[s];
    if (u !== null && u.phys === phys && (u.pi || u.eip === c.eip) && u.mode === this.mode() && u.csBase === c.segBase[CS] && u.csLimit === c.segLimit[CS]) return u;
    if (!candidate) { this.missReason = MISS_NOT_START; return null; }
    if (this.displaced[s] !== 0 || (u !== null && u.phys === phys)) {
      for (let o: Unit | null = this.byPhys.get(phys) ?? null; o !== null; o = o.nextSame) {
        if ((o.pi || o.eip === c.eip) && o.mode === this.mode() && o.csBase === c.segBase[CS] && o.csLimit === c.segLimit[CS]) {
          this.place(s, o);
          return o;
        }
      }
    }
    if (!c.cs32) { this.missReason = MISS_16BIT; return null; }
    if (this.untranslatableSlot[s] !== 0 && this.untranslatable.has(phys)) { this.missReason = MISS_UNTRANSLATABLE; return null; }
    if (++this.heat[s] < this.hot) { this.missReason = MISS_COLD; return null; }
    this.heat[s] = 0;
    const t0 = performance.now();
    const nu = this.translate(phys);
    this.stats.translateMs += performance.now() - t0;
    if (nu === null) {
      this.untranslatable.add(phys);
      this.untranslatableSlot[s] = 1;
      // Write-protected like a page with units, so that new code there (a write) clears the mark.
      const f = phys >>> 12;
      if (!this.codeFrames[f]) { this.codeFrames[f] = 1; c.protectFrame(phys & ~0xfff); }
      this.missReason = MISS_UNTRANSLATABLE;
      return null;
    }
    this.place(s, nu);
    return nu;
  }

  private pruned(f: number, list: Unit[]): Unit[] {
    const live = list.filter((o) => o.phys !== DROPPED);
    this.frameUnits.set(f, live);
    return live;
  }

  /**
   * A loop split over two units: the hot path of A leaves through the taken side of a Jcc to B, and B's
   * leads back to A (a loop whose head is the target of a branch from later on, or whose body A decoded on
   * the fall-through side of the loop's own test), so every iteration costs two unit entries. The
   * dispatcher counts which exit each of the last REVIEW_WINDOW of a unit's first `reviewRuns` runs took;
   * if a Jcc's taken side was at least half of them, towards a unit that leads back to this one, the unit
   * is translated again following that side: B's code becomes part of A, usually up to the branch back to
   * A's entry, which makes A a loop of its own.
   * Only such loops are translated twice. Also following Jccs taken nearly every time (7/8 of the window:
   * stack-protector and NULL checks, early returns) cut user-mode awk's unit entries from 68 M to 42 M but
   * not its time, and made gzip 630 → 420 MIPS, sha256sum 1060 → 870 and bzip2 530 → 380: every second
   * translation starts cold in V8 again (bytecode, then a new optimisation of a large function), which
   * costs more than one unit entry per run saves (appending every Jcc's taken side at the first
   * translation, docs/jit.md "Side traces", made V8 compile code that had never run).
   * Called with CS:EIP at the unit's entry; returns the unit to run.
   */
  private review(a: Unit): Unit {
    const counts = a.exitCounts;
    a.exitCounts = null;
    if (counts === null || a.inverted.length >= MAX_INVERTED) return a;
    const window = Math.min(REVIEW_WINDOW, this.reviewRuns);
    const add: number[] = [];
    for (let s = 0; s < counts.length; s++) {
      const rel = a.jccAt[s];
      if (rel !== rel || a.inverted.includes(rel)) continue;
      const b = a.succ[s];
      if (counts[s] * 2 >= window && b !== null && b !== a && b.phys !== DROPPED && b.succ.includes(a)) add.push(rel);
    }
    if (add.length === 0) return a;
    const phys = a.phys;
    const t0 = performance.now();
    const nu = this.translate(phys, MAX_INSNS, false, [...a.inverted, ...add].slice(0, MAX_INVERTED));
    this.stats.translateMs += performance.now() - t0;
    if (nu === null) return a;
    this.stats.retranslated++;
    // Translating may have flushed the cache, and a with it.
    if (a.phys !== DROPPED) this.remove(a);
    this.place(slot(phys), nu);
    return nu;
  }

  /**
   * A unit entered GROUP_RUNS times becomes the entry of a group: one function with its code and that of
   * the hot units its exits led to (through the chain links, breadth first, up to GROUP_MEMBERS), which
   * keeps the guest registers in locals from one to the next and goes on without returning to the
   * dispatcher (see codegen.ts groupSource). A link records where its successor started relative to the
   * leaving unit's entry (succD), so each member's EIP is known from the entry's. Members stay units of
   * their own for entries from elsewhere; the group replaces the entry unit in the lookup table.
   * Called with CS:EIP at the unit's entry; returns the unit to run.
   */
  private group(root: Unit): Unit {
    const c = this.cpu;
    if (root.group || this.heldUnits >= MAX_UNITS) return root;
    const members: { u: Unit; eip: number }[] = [{ u: root, eip: c.eip }];
    const hot = this.groupRuns >>> 3;
    for (let i = 0; i < members.length && members.length < GROUP_MEMBERS; i++) {
      const m = members[i];
      for (let s = 0; s < m.u.succ.length; s++) {
        for (const [v, d] of [[m.u.succ[s], m.u.succD[s]], [m.u.alt[s], m.u.altD[s]]] as [Unit | null, number][]) {
          if (v === null || v.phys === DROPPED || v.group || v.runs < hot || members.length >= GROUP_MEMBERS) continue;
          if (v.mode !== root.mode || v.csBase !== root.csBase || v.csLimit !== root.csLimit) continue;
          const eip = (m.eip + d) | 0;
          if (members.some((o) => o.u === v || o.eip === eip)) continue;
          // Its code must be where the link found it, through the current mappings.
          const lin = (root.csBase + eip) | 0;
          const te = c.tlbEntry[lin >>> 12];
          if ((te & c.rdMask) === 0 || ((te & -4096) | (lin & 0xfff)) !== v.phys) continue;
          members.push({ u: v, eip });
        }
      }
    }
    if (members.length < 2) return root;
    const t0 = performance.now();
    const parts: GroupMember[] = [];
    const pages = new Set<number>();
    let slots = 0, size = 0, insns = 0, inlined = 0;
    const index = new Map<Unit, number>();
    for (const m of members) {
      const p = this.plan(m.u.phys, m.eip, MAX_INSNS, false, m.u.inverted, slots);
      if (p === null) continue;
      const body = p.g.body(p.loop);
      if (parts.length > 0 && size + body.raw.length > GROUP_SOURCE) break;
      size += body.raw.length;
      index.set(m.u, parts.length);
      parts.push({ body, delta: (m.eip - c.eip) | 0, page: m.u.phys & -4096, to: [], shadow: p.stiLast });
      for (const pg of p.pages) pages.add(pg);
      slots = p.g.slots;
      insns += p.length;
      inlined += p.g.inlined;
    }
    // Each member goes on only to the members it led to (a RET alternates between a few): the others' cases
    // would cost compares on every exit.
    for (const [u, i] of index) {
      const to = new Set<number>();
      for (const v of [...u.succ, ...u.alt]) { const j = v === null ? undefined : index.get(v); if (j !== undefined) to.add(j); }
      parts[i].to = [...to];
    }
    if (parts.length < 2) return root;
    const src = groupSource(parts, root.csBase, (c.eip >>> 0).toString(16));
    this.onTranslate?.(c.eip, src);
    const g = this.register(this.compile(src), root.phys, c.eip, slots, [...pages], [], [], insns, true);
    this.stats.translateMs += performance.now() - t0;
    this.stats.groups++;
    this.stats.groupMembers += parts.length;
    this.stats.insnsTranslated += insns;
    this.stats.insnsInlined += inlined;
    this.stats.sourceChars += src.length;
    if (root.phys !== DROPPED) this.remove(root);
    this.place(slot(g.phys), g);
    return g;
  }

  /** Drops a live unit and takes it out of byPhys and the lookup table (it stays listed by frame until pruned). */
  private remove(u: Unit): void {
    const phys = u.phys;
    this.drop(u);
    this.unlinkPhys(u, phys);
    const s = slot(phys);
    if (this.table[s] === u) { this.table[s] = null; this.liveUnits--; }
    this.heldUnits--;
  }

  /** Counts the exit a unit in its review window took (see review). */
  private noteExit(u: Unit, ex: number): void {
    if (ex < 0) return;
    (u.exitCounts ??= new Uint32Array(u.succ.length))[ex]++;
  }

  /** Removes u from the byPhys chain of its entry offset `phys` (the other units there stay findable). */
  private unlinkPhys(u: Unit, phys: number): void {
    let head = this.byPhys.get(phys) ?? null;
    if (head === u) head = u.nextSame;
    else for (let o = head; o !== null; o = o.nextSame) if (o.nextSame === u) { o.nextSame = u.nextSame; break; }
    if (head === null) this.byPhys.delete(phys); else this.byPhys.set(phys, head);
  }

  /** Puts u in its lookup-table slot, noting when that hides another address's unit (see `displaced`). */
  private place(s: number, u: Unit): void {
    const old = this.table[s];
    if (old === null) this.liveUnits++;
    else if (old.phys !== u.phys) this.displaced[s] = 1;
    this.table[s] = u;
  }

  private translate(phys: number, maxInsns = MAX_INSNS, force = false, inverted: number[] = []): Unit | null {
    const c = this.cpu;
    // Host memory stays bounded: past the limit everything is dropped (re-translating what is still hot
    // is cheap next to tracking recency on every dispatch). Done first, so the new unit is registered.
    if (this.heldUnits >= MAX_UNITS) this.flush();
    const p = this.plan(phys, c.eip, maxInsns, force, inverted);
    if (p === null) return null;
    const src = p.g.finish(p.loop);
    this.onTranslate?.(c.eip, src);
    const u = this.register(this.compile(src), phys, c.eip, p.g.slots, p.pages, inverted, p.g.jccAt, p.length);
    this.stats.unitsTranslated++;
    this.stats.insnsTranslated += p.length;
    this.stats.insnsInlined += p.g.inlined;
    this.stats.sourceChars += src.length;
    return u;
  }

  private compile(src: string): Unit['fn'] {
    try {
      return new Function('PAR', 'X', 'C', 'F', 'FR', 'S', src)(PARITY, this.exits, this.callouts, x87MemDirect, x87RegDirect, loadSegment) as Unit['fn'];
    } catch (e) {
      throw new Error(`jit: generated code does not compile (${(e as Error).message}):\n${src}`);
    }
  }

  /** Makes a unit of `fn` and registers it under its entry offset and with every code page it was built from. */
  private register(fn: Unit['fn'], phys: number, entry: number, slots: number, pages: number[], inverted: number[], jccAt: number[], length: number, group = false): Unit {
    const c = this.cpu;
    const u: Unit = {
      fn, phys, eip: entry, mode: this.mode(), csBase: c.segBase[CS], csLimit: c.segLimit[CS], pi: c.segLimit[CS] === 0xffffffff,
      succ: new Array<Unit | null>(slots).fill(null), alt: new Array<Unit | null>(slots).fill(null),
      succD: new Int32Array(slots), altD: new Int32Array(slots), nextSame: this.byPhys.get(phys) ?? null, runs: 0, insns: 0, length,
      jccAt: Float64Array.from({ length: slots }, (_, i) => jccAt[i] ?? NaN), inverted, exitCounts: null, group,
    };
    this.byPhys.set(phys, u);
    // Registered with every page it was built from: a write to any of them drops it.
    for (const ph of pages) {
      const f = ph >>> 12;
      if (!this.codeFrames[f]) {
        this.codeFrames[f] = 1;
        c.protectFrame(ph);
      }
      let list = this.frameUnits.get(f);
      if (!list) { list = []; this.frameUnits.set(f, list); }
      // A unit dropped through another of its pages stays listed here until this frame is invalidated or
      // the cache flushed: prune such entries now and then so that the list stays bounded.
      if (list.length >= 16 && (list.length & (list.length - 1)) === 0) list = this.pruned(f, list);
      list.push(u);
    }
    this.heldUnits++;
    return u;
  }

  /**
   * Decodes a unit entered at `entry` (host offset `phys`) and generates its code, without making a
   * function of it; null when no unit can start there. `slotBase`: a member of a group (see group).
   */
  private plan(phys: number, entry: number, maxInsns: number, force: boolean, inverted: number[], slotBase?: number): { g: Gen; loop: boolean; pages: number[]; length: number; stiLast: boolean } | null {
    const c = this.cpu;
    let pageHost = phys & ~0xfff;
    // The host pages the unit's code comes from: the entry's, then any a direct jump or the fall-through
    // leads to (see `enter` below).
    const pages = [pageHost];
    const csBase = c.segBase[CS];
    const csLimit = c.segLimit[CS];
    const group = slotBase !== undefined;
    const g = new Gen({ entry, ss32: c.ss32, csLimit, flat: c.flatSegs, cpl: c.cpl, group, slotBase });
    let at = phys & 0xfff;
    let eip = entry;
    let visited = new Set<number>();
    const jccTargets: number[] = [];
    type Call = { ret: number; host: number; at: number };
    let calls: Call[] = [];
    let loop = false;
    // Pass 1 decides the instruction sequence (following direct jumps, within the page and to pages the
    // TLB maps now) and whether the unit loops back to its entry; pass 2 (the loop below, re-run) emits code.
    // `enter`: the instruction is the first one of another code page, whose linear page must map to that
    // host page when the unit gets there (checked inline; otherwise the unit leaves for the dispatcher).
    // `linear`: a direct JMP not followed: decoding went on after it (see below). `retTo`: a RET whose
    // CALL the unit followed; decoding went on at the CALL's return address.
    // `invert`: a Jcc whose taken side decoding followed (see review); its fall-through side leaves.
    type Step = { d: Insn; kind: 'inline' | 'callout' | 'last-callout'; enter?: number; linear?: boolean; retTo?: number; invert?: boolean };
    const seq: Step[] = [];
    let tail: { kind: 'fall'; next: number } | { kind: 'jump'; target: number } | { kind: 'none' } = { kind: 'none' };
    const probe = new Gen({ entry, ss32: c.ss32, csLimit, flat: c.flatSegs, cpl: c.cpl });
    let enter: number | undefined;
    // The host page the linear page of `eip` maps to now (translation time), or -1.
    const mapped = (e: number) => {
      const vpn = ((csBase + e) | 0) >>> 12;
      return (c.tlbFlags[vpn] & c.rdMask) !== 0 ? c.tlbHost[vpn] : -1;
    };
    // A JMP decoded past (see below) whose target decoding has not reached yet, and the state to go back
    // to if it does not: then the JMP is followed as before (`noLinear`).
    let pend: { len: number; at: number; eip: number; enter: number | undefined; target: number; visited: Set<number>; jccs: number; loop: boolean; calls: Call[] } | null = null;
    let noLinear = -1, goneBack = 0;
    const goBack = (): boolean => {
      if (pend === null) return false;
      seq.length = pend.len - 1;
      at = pend.at; eip = pend.eip; enter = pend.enter; visited = pend.visited; jccTargets.length = pend.jccs; loop = pend.loop; calls = pend.calls;
      noLinear = eip;
      goneBack++; // bounded: after 8 times, no more decoding past JMPs in this unit
      pend = null;
      return true;
    };
    for (;;) {
      if (seq.length >= maxInsns) { if (goBack()) continue; tail = { kind: 'fall', next: eip }; break; }
      const d = decode(c.pool, pageHost, at, eip, c.cs32);
      if (d === null || ((eip + d.len - 1) >>> 0) > csLimit) {
        if (goBack()) continue;
        if (seq.length === 0) return null;
        tail = { kind: 'fall', next: eip };
        break;
      }
      visited.add(pageHost | at);
      const r = probe.inline(d, seq.length, false);
      if (r === 'no') {
        const last = !safeCallout(d);
        if (last && goBack()) continue;
        if (last && seq.length === 0 && !force) return null; // a lone monitor call gains nothing over the interpreter
        seq.push({ d, kind: last ? 'last-callout' : 'callout', enter });
        enter = undefined;
        if (last) break;
      } else {
        if (r === 'end' && goBack()) continue;
        seq.push({ d, kind: 'inline', enter });
        enter = undefined;
        // A RET of a CALL the unit followed: decoding goes on at the return address, and the RET checks
        // that it pops that address (otherwise it leaves like any RET). Calls and returns then cost no
        // unit exit.
        if (r === 'end' && (d.op === 0xc3 || d.op === 0xc2) && calls.length > 0) {
          const call = calls.pop()!;
          seq[seq.length - 1].retTo = call.ret;
          if (call.host !== pageHost) enter = call.host;
          pageHost = call.host; at = call.at; eip = call.ret;
          continue;
        }
        if (r === 'end') break;
        if (r === 'jcc') {
          const target = branchTarget(d);
          if (pend === null && target !== entry && inverted.includes((eip - entry) | 0)) {
            // Decoding goes on at the taken side, if it can (the target is not in the unit yet and its page
            // is mapped now), as for a followed JMP.
            const tat = at + (target - eip);
            const host = tat >= 0 && tat < 0x1000 ? pageHost : mapped(target);
            if (host >= 0 && !visited.has(host | (target & 0xfff)) && (pages.includes(host) || pages.length < MAX_PAGES)) {
              seq[seq.length - 1].invert = true;
              if (((eip + d.len) | 0) === entry) loop = true;
              if (host !== pageHost) { if (!pages.includes(host)) pages.push(host); enter = host; }
              pageHost = host; at = target & 0xfff; eip = target;
              continue;
            }
          }
          if (target === entry) loop = true;
          jccTargets.push(target);
        }
        if (r === 'jump') {
          const target = branchTarget(d);
          const tat = at + (target - eip);
          // The JMP at the end of an if-else's first arm: when a Jcc of the unit targets the code right
          // after it (the other arm) and the JMP lands a little further on in the page, decoding goes on
          // straight through the other arm to the JMP's target. Both branches then stay inside the unit
          // (see "Forward branches" below) instead of the Jcc's taken side leaving it. If decoding does not
          // get there (a call, a unit end, a misaligned target), it goes back and follows the JMP.
          const next = (eip + d.len) | 0;
          const linear = (d.op === 0xe9 || d.op === 0xeb) && eip !== noLinear && goneBack < 8 && target - next > 0 &&
            target - next <= 512 && tat < 0x1000 && jccTargets.some((t) => t - next >= 0 && t - target < 0);
          if (pend !== null && !(linear && target - pend.target <= 0)) { goBack(); continue; }
          if (linear) {
            seq[seq.length - 1].linear = true;
            // Nested: an if-else inside the other arm of a pending one ends before that one's target.
            if (pend === null) pend = { len: seq.length, at, eip, enter: seq[seq.length - 1].enter, target, visited: new Set(visited), jccs: jccTargets.length, loop, calls: calls.slice() };
            at += d.len; eip = next;
            continue;
          }
          if (target === entry) { loop = true; tail = { kind: 'jump', target }; break; }
          if (seq.length + 1 >= maxInsns) { tail = { kind: 'jump', target }; break; }
          // A followed CALL: where its RET returns to (when that is in the CALL's page).
          const call: Call | null = d.op === 0xe8 && at + d.len < 0x1000 ? { ret: next, host: pageHost, at: at + d.len } : null;
          if (tat >= 0 && tat < 0x1000) {
            if (visited.has(pageHost | tat)) { tail = { kind: 'jump', target }; break; }
            at = tat; eip = target;
            if (call) calls.push(call);
            continue;
          }
          // A CALL into another page is followed in user code only: kernel functions are called from many
          // places, and copying each callee into every caller's unit made boot 20% and fork/exec 40% slower
          // (more code for V8 to compile, each copy less warm); for busybox awk it saves 13%.
          const host = d.op === 0xe8 && c.cpl !== 3 ? -1 : mapped(target);
          if (host < 0 || pages.length >= MAX_PAGES || visited.has(host | (target & 0xfff))) { tail = { kind: 'jump', target }; break; }
          if (!pages.includes(host)) pages.push(host);
          pageHost = host; at = target & 0xfff; eip = target; enter = host;
          if (call) calls.push(call);
          continue;
        }
      }
      at += d.len; eip = (eip + d.len) | 0;
      if (pend !== null) {
        if (eip === pend.target) pend = null;
        else if (eip - pend.target > 0) { goBack(); continue; }
      }
      if (at >= 0x1000) {
        if (goBack()) continue;
        const host = mapped(eip);
        if (host < 0 || pages.length >= MAX_PAGES || seq.length >= maxInsns) { tail = { kind: 'fall', next: eip }; break; }
        if (!pages.includes(host)) pages.push(host);
        pageHost = host; at = 0; enter = host;
      }
    }

    // A JMP decoded past that ended up last leaves the unit like any JMP not followed.
    const last = seq[seq.length - 1];
    if (last.linear) { last.linear = false; tail = { kind: 'jump', target: branchTarget(last.d) }; }

    // Forward branches inside the unit: a Jcc, or a JMP decoded past, whose target is a later instruction
    // of the sequence jumps there (out of a labelled block that ends just before the target) instead of
    // leaving the unit, so neither side of an `if` or an if-else costs a unit exit. One block per target,
    // opened at the first branch to it; a block that would overlap another without nesting starts earlier.
    const isJcc = (d: Insn) => (d.op >= 0x70 && d.op <= 0x7f) || (d.op >= 0x180 && d.op <= 0x18f);
    const fwdTo = new Int32Array(seq.length).fill(-1);
    const blockStart = new Int32Array(seq.length).fill(-1); // by target index
    for (let j = 0; j < seq.length; j++) {
      const d = seq[j].d;
      if (seq[j].kind !== 'inline' || !(isJcc(d) || seq[j].linear)) continue;
      const target = branchTarget(d);
      let m = -1;
      for (let k = j + 1; k < seq.length; k++) if (seq[k].d.eip === target) { m = k; break; }
      if (m < 0 || (m === j + 1 && !seq[j].linear) || seq[j].invert) continue;
      // The taken side must not skip a page check (an instruction entered from another page).
      if (seq.slice(j + 1, m + 1).some((st) => st.enter !== undefined)) continue;
      fwdTo[j] = m;
      if (blockStart[m] < 0) blockStart[m] = j;
    }
    // Widen until the blocks nest: [s, m) and [s2, m2) with s < s2 < m < m2 becomes [s, m), [s, m2).
    for (let changed = true; changed;) {
      changed = false;
      for (let m = 0; m < seq.length; m++) {
        if (blockStart[m] < 0) continue;
        for (let m2 = m + 1; m2 < seq.length; m2++) {
          const s = blockStart[m], s2 = blockStart[m2];
          if (s2 >= 0 && s < s2 && s2 < m) { blockStart[m2] = s; changed = true; }
        }
      }
    }
    for (let idx = 0; idx < seq.length; idx++) {
      const { d, kind } = seq[idx];
      // Close the block that ends here (the innermost open one), then open those that start here, outermost
      // (latest target) first.
      if (blockStart[idx] >= 0) g.closeForward(idx);
      const ent = seq[idx].enter;
      if (ent !== undefined) g.enterPage(idx, d.eip, ent, csBase);
      for (let m = seq.length - 1; m > idx; m--) if (blockStart[m] === idx) g.openForward(m);
      if (idx > 0 && seq[idx - 1].d.op === 0xfb) g.shadowEnd();
      g.begin(idx, d.eip);
      if (kind === 'inline') {
        if (fwdTo[idx] >= 0) g.forwardBranch(idx, fwdTo[idx]);
        if (seq[idx].invert) g.invertJcc(idx);
        const rt = seq[idx].retTo;
        if (rt !== undefined) g.returnTo(idx, rt);
        const r = g.inline(d, idx, loop);
        if (r === 'jump' && seq[idx].linear) {
          if (fwdTo[idx] >= 0) g.breakForward(idx, fwdTo[idx]);
          else g.jumpOut(idx, branchTarget(d), loop);
        } else if (r === 'jump' && idx === seq.length - 1 && tail.kind === 'jump') g.jumpOut(idx, tail.target, loop);
      } else g.callout(d, idx, kind === 'last-callout');
    }
    if (tail.kind === 'fall') {
      const ld = seq[seq.length - 1].d;
      g.fallOut(seq.length - 1, tail.next, (ld.op >= 0x70 && ld.op <= 0x7f) || (ld.op >= 0x180 && ld.op <= 0x18f));
    }
    return { g, loop, pages, length: seq.length, stiLast: seq[seq.length - 1].d.op === 0xfb };
  }

  /**
   * Runs up to about `budget` instructions (a unit may overrun the budget by its length, at most
   * MAX_INSNS), with the interpreter's rules for interrupts, halts and exceptions.
   */
  run(budget: number): number {
    const c = this.cpu;
    const st = this.stats;
    const misses = this.misses;
    let n = 0, extra = 0;
    let inUnit = false;
    c.stopSlice = false;
    while (n + extra < budget && !c.stopSlice) {
      if (c.halted) {
        if (!c.wakeFromHalt()) break;
      }
      try {
        let candidate = true;
        // The unit that just ran, when it left through a chainable exit (slot `ex`); null otherwise. Any
        // event between two units (an interrupt, an interpreted instruction) breaks the chain.
        let prev: Unit | null = null;
        let ex = -1;
        // The EIP `prev` was entered at (links record where their successor starts relative to it).
        let prevE = 0;
        // Instructions interpreted since the last block start (see the end of the loop).
        let straight = 0;
        while (n + extra < budget) {
          if (c.flags & TF) {
            // Single-stepping: the interpreter checks interrupts, runs one instruction and traps.
            extra += c.interpret(1);
            misses[MISS_TF]++;
            candidate = true;
            prev = null;
            if (c.stopSlice || c.halted) break;
            continue;
          }
          // The interpreter's interrupt check, verbatim: the instruction after STI / MOV SS / POP SS runs
          // before interrupts are recognised, and the shadow ends after it. Those instructions end a unit,
          // so the shadowed instruction is interpreted here, exactly one, as interpret() does.
          if (c.inhibitIrq) {
            c.inhibitIrq = false;
            c.step();
            n++;
            misses[MISS_SHADOW]++;
            candidate = true;
            prev = null;
            if (c.stopSlice || c.halted) break;
            continue;
          }
          // Interrupts are checked between every two units, chained or not: the latency is one unit.
          if (c.intr || c.nmiPending) {
            if (c.nmiPending || (c.flags & IF)) { c.serviceInterrupt(); candidate = true; prev = null; }
          }
          let u: Unit | null;
          if (prev !== null) {
            u = prev.succ[ex];
            const lin = (c.segBase[CS] + c.eip) | 0;
            // The host offset of CS:EIP through the TLB (-1 when the page is not readable there): a unit
            // translated from those bytes has the same `phys`.
            const te = c.tlbEntry[lin >>> 12];
            const phys = (te & c.rdMask) !== 0 ? (te & -4096) | (lin & 0xfff) : -1;
            if (u !== null && u.phys === phys && (u.pi || u.eip === c.eip)) {
              st.chained++;
            } else {
              const a: Unit | null = prev.alt[ex];
              if (a !== null && a.phys === phys && (a.pi || a.eip === c.eip)) {
                const d = prev.altD[ex];
                prev.alt[ex] = u; prev.succ[ex] = a; u = a;
                prev.altD[ex] = prev.succD[ex]; prev.succD[ex] = d;
                st.chained++;
              } else {
                st.lookups++;
                const found = this.find(true);
                // Linked only under the leaving unit's own key (which the current state has at a chainable
                // exit), so following the link later needs no mode or CS check.
                if (found !== null && found.mode === prev.mode && found.csBase === prev.csBase && found.csLimit === prev.csLimit) {
                  prev.alt[ex] = u; prev.succ[ex] = found; st.links++;
                  prev.altD[ex] = prev.succD[ex]; prev.succD[ex] = (c.eip - prevE) | 0;
                }
                u = found;
              }
            }
          } else if (candidate) {
            st.lookups++;
            u = this.find(true);
          } else {
            // Fell through from an interpreted instruction: units start at block starts, so no lookup
            // (it cost ~40 ns of cache misses per interpreted instruction); the interpreter goes on to
            // the next branch, whose target is looked up.
            u = null;
            this.missReason = MISS_NOT_START;
          }
          if (u !== null) {
            if (u.runs === this.reviewRuns) u = this.review(u);
            else if (u.runs === this.groupRuns) u = this.group(u);
            this.codeChanged = false;
            this.ex = -1;
            prevE = c.eip;
            inUnit = true;
            const k = u.fn(c, this, budget - n - extra);
            inUnit = false;
            if (k < 0) {
              // Translated for flat DS/SS/ES (or others) that are not flat now: interpret this block.
              c.step();
              n++;
              misses[MISS_SEGMENTS]++;
              prev = null;
              candidate = false;
              if (c.stopSlice || c.halted) break;
              continue;
            }
            n += k;
            u.runs++;
            u.insns += k;
            candidate = true;
            ex = this.ex;
            prev = ex >= 0 ? u : null;
            if (u.runs > this.watchFrom && u.runs <= this.reviewRuns) this.noteExit(u, ex);
          } else {
            const reason = this.missReason;
            if (reason !== MISS_NOT_START) straight = 0;
            prev = null;
            candidate = false;
            // The rest of a straight run of interpreted code stays in this loop, without the checks between
            // units, up to the next block start or anything the loop above must see first (an interrupt it
            // would take, NMI, TF, an interrupt shadow, a halt or stop, the budget).
            for (let first = true; ; first = false) {
              const e0 = c.eip;
              c.step();
              n++;
              misses[first ? reason : MISS_NOT_START]++;
              // A block start is where control arrives other than by falling through, or after an instruction
              // no unit can start with (the rest of its block gets a unit of its own). Straight code is also
              // cut where a unit starting at the last block start would end (MAX_INSNS instructions, the
              // page end), so that each piece gets hot and translated on its own: otherwise, in a long
              // unrolled function (the kernel's BLAKE2s, ~2,000 instructions without a branch), every piece
              // but the first ran on the interpreter until the one before it had been translated.
              if (((c.eip - e0) >>> 0) > 15 || reason === MISS_UNTRANSLATABLE || ++straight >= MAX_INSNS ||
                ((c.eip ^ e0) & ~0xfff) !== 0) {
                candidate = true;
                straight = 0;
                break;
              }
              if (c.stopSlice || c.halted || c.inhibitIrq || c.nmiPending || (c.intr && (c.flags & IF)) || (c.flags & TF) ||
                n + extra >= budget) break;
            }
          }
          if (c.stopSlice || c.halted) break;
        }
      } catch (e) {
        if (!(e instanceof CpuFault)) throw e;
        if (inUnit) { n += this.faultDone + 1; inUnit = false; } else n++;
        c.eip = c.prevEip;
        c.raiseException(e.vector, e.code, e.hasCode);
      }
      if (c.halted) break;
    }
    c.instructions += n;
    st.interpreted = misses.reduce((a, b) => a + b, 0);
    return n + extra;
  }

  /**
   * Translates the instruction at CS:EIP as a one-instruction unit and runs it, like CPU.step(): faults
   * propagate as CpuFault with prevEip set. For tests: every instruction form goes through the generator.
   */
  stepOne(): void {
    const c = this.cpu;
    c.prevEip = c.eip;
    const lin = (c.segBase[CS] + c.eip) | 0;
    const vpn = lin >>> 12;
    if (!(c.tlbFlags[vpn] & c.rdMask)) c.translate(lin, false, c.cpl === 3);
    const host = c.tlbHost[vpn];
    const u = host >= 0 && c.cs32 && (c.tlbFlags[vpn] & c.rdMask) ? this.translate(host | (lin & 0xfff), 1, true) : null;
    if (u === null) { c.step(); return; }
    this.codeChanged = false;
    if (u.fn(c, this, 1) < 0) c.step();
  }

  /** The statistics with the run counts of the units still held (dropped ones are in `stats` already). */
  totals(): JitStats {
    const s = { ...this.stats };
    // Each live unit once, under the frame of its entry (a unit spanning pages is listed under each).
    for (const [f, us] of this.frameUnits) for (const u of us) if (u.phys !== DROPPED && (u.phys >>> 12) === f) { s.unitRuns += u.runs; s.unitInsns += u.insns; }
    return s;
  }

  /** Human-readable statistics for `--stats`. */
  report(): string {
    const s = this.totals();
    const lines = [
      `jit: ${s.unitsTranslated} units translated (${s.insnsTranslated} instructions, ${s.insnsInlined} inlined, ${(s.sourceChars / 1e6).toFixed(1)} MB of JavaScript) in ${s.translateMs.toFixed(0)} ms; ${this.heldUnits} held, ${this.liveUnits} in the lookup table`,
      `jit: ${s.flushes} cache flushes, ${s.invalidatedFrames} code-page invalidations (${s.invalidatedUnits} units), ${s.retranslated} translated again along their hot path, ${s.groups} groups of ${s.groupMembers} units`,
      `jit: ${s.unitRuns} unit runs, ${s.unitInsns} instructions in units, ${s.interpreted} interpreted outside units`,
      `jit: dispatch: ${s.chained} through chain links, ${s.lookups} table lookups, ${s.links} links made`,
      `jit: interpreted outside units by reason: ${MISS_NAMES.map((m, i) => `${m}=${this.misses[i]}`).join(' ')}`,
    ];
    let cold = 0, live = 0;
    for (const u of this.table) if (u !== null) { live++; if (u.runs < 64) cold++; }
    lines.push(`jit: ${cold} of ${live} live units entered fewer than 64 times`);
    const hot = this.table.filter((u): u is Unit => u !== null).sort((a, b) => b.insns - a.insns).slice(0, 6);
    lines.push(`jit: hottest units (eip: instructions/runs, length): ${hot.map((u) => `${hex(u.eip >>> 0)}: ${u.insns}/${u.runs}, ${u.length}`).join('; ')}`);
    const top = (arr: Float64Array, name: (i: number) => string) => [...arr.entries()].filter(([, v]) => v > 0)
      .sort((a, b) => b[1] - a[1]).slice(0, 12).map(([i, v]) => `${name(i)}=${v}`).join(' ');
    const opName = (i: number) => EXIT_NAMES[i] ?? (i < 0x100 ? `${names1[i]}(${hex(i)})` : `${names2[i & 0xff]}(0f${hex(i & 0xff)})`);
    lines.push(`jit: unit exits by reason: ${top(this.exits, opName)}`);
    lines.push(`jit: monitor calls by opcode: ${top(this.callouts, opName)}`);
    return lines.join('\n') + '\n';
  }
}

/** Drops a unit: links to it are no longer followed, and its own links are cut so it retains nothing. */
function kill(u: Unit): void {
  u.phys = DROPPED;
  u.succ.fill(null);
  u.alt.fill(null);
}

function hex(v: number): string { return v.toString(16).padStart(2, '0'); }

function slot(phys: number): number { return Math.imul(phys, 0x9e3779b1) >>> (32 - TABLE_BITS); }

/** Attaches a binary translator to `cpu` (its run() then executes through it). */
export function attachJit(cpu: CPU, opts: JitOptions = {}): Jit { return new Jit(cpu, opts); }
