// Architectural constants (Intel SDM vol. 3A §2.3 EFLAGS, §2.5 control registers, §6.3 exception vectors).

export const CF = 1 << 0;
export const PF = 1 << 2;
export const AF = 1 << 4;
export const ZF = 1 << 6;
export const SF = 1 << 7;
export const TF = 1 << 8;
export const IF = 1 << 9;
export const DF = 1 << 10;
export const OF = 1 << 11;
export const IOPL = 3 << 12;
export const NT = 1 << 14;
export const RF = 1 << 16;
export const VM = 1 << 17;
export const AC = 1 << 18;
export const VIF = 1 << 19;
export const VIP = 1 << 20;
export const ID = 1 << 21;
/** The six arithmetic status flags. */
export const ARITH = CF | PF | AF | ZF | SF | OF;
/** Bit 1 of EFLAGS always reads as 1. */
export const FLAGS_FIXED1 = 1 << 1;
/** EFLAGS bits an i686 with CPUID implements. */
export const FLAGS_IMPLEMENTED = ARITH | TF | IF | DF | IOPL | NT | RF | VM | AC | VIF | VIP | ID;

export const CR0_PE = 1 << 0;
export const CR0_MP = 1 << 1;
export const CR0_EM = 1 << 2;
export const CR0_TS = 1 << 3;
export const CR0_ET = 1 << 4;
export const CR0_NE = 1 << 5;
export const CR0_WP = 1 << 16;
export const CR0_AM = 1 << 18;
export const CR0_NW = 1 << 29;
export const CR0_CD = 1 << 30;
export const CR0_PG = 1 << 31;

export const CR4_VME = 1 << 0;
export const CR4_PVI = 1 << 1;
export const CR4_TSD = 1 << 2;
export const CR4_DE = 1 << 3;
export const CR4_PSE = 1 << 4;
export const CR4_PAE = 1 << 5;
export const CR4_MCE = 1 << 6;
export const CR4_PGE = 1 << 7;
export const CR4_PCE = 1 << 8;
export const CR4_OSFXSR = 1 << 9;
export const CR4_OSXMMEXCPT = 1 << 10;

// Segment register indices, in the order of the ModRM sreg field (SDM vol. 2 §3.1.1.3 "Sreg").
export const ES = 0, CS = 1, SS = 2, DS = 3, FS = 4, GS = 5;
export const SEG_NAMES = ['es', 'cs', 'ss', 'ds', 'fs', 'gs'];

// Exception vectors (SDM vol. 3A Table 6-1).
export const EXC_DE = 0, EXC_DB = 1, EXC_NMI = 2, EXC_BP = 3, EXC_OF = 4, EXC_BR = 5, EXC_UD = 6, EXC_NM = 7;
export const EXC_DF = 8, EXC_TS = 10, EXC_NP = 11, EXC_SS = 12, EXC_GP = 13, EXC_PF = 14;
export const EXC_MF = 16, EXC_AC = 17, EXC_MC = 18, EXC_XM = 19;

/** Exceptions that push an error code (SDM vol. 3A Table 6-1 "Error Code" column). */
export const EXC_HAS_ERROR = (1 << EXC_DF) | (1 << EXC_TS) | (1 << EXC_NP) | (1 << EXC_SS) | (1 << EXC_GP) | (1 << EXC_PF) | (1 << EXC_AC);
/** Contributory exceptions, for the double-fault rules of SDM vol. 3A Table 6-5. */
export const EXC_CONTRIBUTORY = (1 << EXC_DE) | (1 << EXC_TS) | (1 << EXC_NP) | (1 << EXC_SS) | (1 << EXC_GP);

// MSR numbers (SDM vol. 4).
export const MSR_TSC = 0x10;
export const MSR_PLATFORM_ID = 0x17;
export const MSR_APIC_BASE = 0x1b;
export const MSR_BIOS_SIGN_ID = 0x8b;
export const MSR_MTRRCAP = 0xfe;
export const MSR_SYSENTER_CS = 0x174;
export const MSR_SYSENTER_ESP = 0x175;
export const MSR_SYSENTER_EIP = 0x176;
export const MSR_MCG_CAP = 0x179;
export const MSR_MCG_STATUS = 0x17a;
export const MSR_MISC_ENABLE = 0x1a0;
export const MSR_PAT = 0x277;
/**
 * IA32_ARCH_CAPABILITIES (SDM vol. 4 Table 2-2; CPUID.(EAX=7,ECX=0):EDX[29] says it exists). The vCPU
 * executes one instruction at a time and never speculates, so it states that none of the transient-execution
 * leaks apply: RDCL_NO (0, Meltdown), SSB_NO (4), MDS_NO (5), PSCHANGE_MC_NO (6), TAA_NO (8), SBDR_SSDP_NO,
 * FBSDP_NO, PSDP_NO (13-15, MMIO stale data). Without MDS_NO, Linux clears "CPU buffers" with VERW on every
 * return to user mode: a monitor call and a unit exit per system call under the JIT.
 */
export const MSR_ARCH_CAPABILITIES = 0x10a;
export const ARCH_CAPABILITIES_VALUE = (1 << 0) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 8) | (1 << 13) | (1 << 14) | (1 << 15);
export const MSR_MTRR_DEF_TYPE = 0x2ff;
