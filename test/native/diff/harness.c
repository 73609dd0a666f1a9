/*
 * Native oracle for Trapeze's single-instruction differential test.
 *
 * usage: harness <cases.bin> <results.bin>
 *
 * Runs each case's instruction on this host's CPU (i386 code, user mode) in
 * the fixed memory layout the vCPU test uses, and records the architectural
 * result.  The file formats are defined in test/diff/format.ts; the two must
 * change together (the magic carries a version number).
 *
 * Layout (linear addresses, identical in the vCPU):
 *   0x000F0000-0x00110000  code region; the instruction sits at 0x00100000,
 *                          every other 16-byte slot is a landing pad that
 *                          records its own address, so taken branches report
 *                          where they went.
 *   0x00200000-0x00210000  data area (memory operands point here)
 *   0x00300000-0x00310000  stack area
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#define CODE_LO 0x000F0000u
#define CODE_HI 0x00110000u
#define CODE_AT 0x00100000u
#define DATA_AT 0x00200000u
#define STACK_AT 0x00300000u
#define AREA 0x10000u
#define SLOT 16u
#define MAGIC_IN 0x31494454u  /* "TDI1" */
#define MAGIC_OUT 0x314f4454u /* "TDO1" */

/* Shared with trampoline.asm (absolute addresses: the binary is non-PIE). */
uint32_t in_gpr[8], out_gpr[8], in_eflags, out_eflags, landed_eip, host_esp;
uint32_t host_mxcsr = 0x1f80;
void *code_vec = (void *)CODE_AT;
void *save_vec;
uint8_t fx_in[512] __attribute__((aligned(16)));
uint8_t fx_out[512] __attribute__((aligned(16)));
extern void run_case(void);
extern void save_state(void);
extern void host_reset(void);

static uint8_t pristine[2][AREA]; /* initial data / stack contents */
static uint8_t shadow[2][AREA];   /* pristine + this case's patches */
static uint8_t fx_default[512];
static const uint32_t area_at[2] = {DATA_AT, STACK_AT};

static sigjmp_buf fault_jb;
static volatile sig_atomic_t in_case;
static volatile uint32_t case_no; /* for the report of a harness crash */
static struct {
  int32_t vector;
  uint32_t signo, code, err, addr, eip, efl, gpr[8];
  int fx_valid;
  uint8_t fx[512];
} fault;

static void die(const char *msg) {
  fprintf(stderr, "harness: %s\n", msg);
  exit(2);
}

static void on_signal(int sig, siginfo_t *si, void *ucv) {
  ucontext_t *uc = ucv;
  greg_t *g = uc->uc_mcontext.gregs;
  uint32_t eip = (uint32_t)g[REG_EIP];
  if (!in_case || eip < CODE_LO || eip >= CODE_HI) {
    /* A fault in the harness itself (or in a landing pad) means the case
     * escaped its sandbox; carrying on would report garbage. */
    char buf[160];
    int n = snprintf(buf, sizeof buf, "harness: unexpected signal %d (trapno %d) at eip %08x in case %u\n", sig,
                     (int)g[REG_TRAPNO], eip, (unsigned)case_no);
    if (write(2, buf, (size_t)n) < 0) {}
    _exit(3);
  }
  fault.vector = (int32_t)g[REG_TRAPNO];
  fault.signo = (uint32_t)sig;
  fault.code = (uint32_t)si->si_code;
  fault.err = (uint32_t)g[REG_ERR];
  fault.addr = (uint32_t)(uintptr_t)si->si_addr;
  fault.eip = eip;
  fault.efl = (uint32_t)g[REG_EFL];
  fault.gpr[0] = (uint32_t)g[REG_EAX];
  fault.gpr[1] = (uint32_t)g[REG_ECX];
  fault.gpr[2] = (uint32_t)g[REG_EDX];
  fault.gpr[3] = (uint32_t)g[REG_EBX];
  fault.gpr[4] = (uint32_t)g[REG_UESP]; /* REG_ESP is the kernel-side copy */
  fault.gpr[5] = (uint32_t)g[REG_EBP];
  fault.gpr[6] = (uint32_t)g[REG_ESI];
  fault.gpr[7] = (uint32_t)g[REG_EDI];
  /* The i386 signal frame holds the legacy FSAVE header (112 bytes, its last
   * u16 being the magic, 0 = FXSR data follows) and then the FXSAVE image of
   * the state at the fault. */
  const uint8_t *fp = (const uint8_t *)uc->uc_mcontext.fpregs;
  fault.fx_valid = 0;
  if (fp && *(const uint16_t *)(fp + 110) == 0) {
    memcpy(fault.fx, fp + 112, 512);
    fault.fx_valid = 1;
  }
  siglongjmp(fault_jb, 1);
}

static void put_landing(uint32_t at, uint32_t eip_value) {
  uint8_t *p = (uint8_t *)(uintptr_t)at;
  uint32_t a = (uint32_t)(uintptr_t)&landed_eip, v = (uint32_t)(uintptr_t)&save_vec;
  p[0] = 0xc7; p[1] = 0x05; /* mov dword [landed_eip], eip_value (flags untouched) */
  memcpy(p + 2, &a, 4);
  memcpy(p + 6, &eip_value, 4);
  p[10] = 0xff; p[11] = 0x25; /* jmp [save_vec] */
  memcpy(p + 12, &v, 4);
}

static void map_fixed(uint32_t at, uint32_t len, int prot) {
  void *p = mmap((void *)(uintptr_t)at, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (p != (void *)(uintptr_t)at) {
    fprintf(stderr, "harness: cannot map %08x+%x: %s\n", at, len, strerror(errno));
    exit(2);
  }
}

/* Growable output buffer. */
static uint8_t *ob;
static size_t olen, ocap;
static void emit(const void *p, size_t n) {
  if (olen + n > ocap) {
    ocap = (ocap + n) * 2;
    ob = realloc(ob, ocap);
    if (!ob) die("out of memory");
  }
  memcpy(ob + olen, p, n);
  olen += n;
}
static void emit32(uint32_t v) { emit(&v, 4); }

static int area_of(uint32_t addr, uint32_t len) {
  for (int i = 0; i < 2; i++)
    if (addr >= area_at[i] && len <= AREA && addr - area_at[i] <= AREA - len) return i;
  return -1;
}

/* The bytes that differ between FXSAVE images in any architecturally
 * meaningful field (FOP/FIP/FDP and MXCSR_MASK are ignored here, like in the
 * comparison, so an integer case does not ship 512 bytes for nothing). */
static int fx_differs(const uint8_t *a, const uint8_t *b) {
  return memcmp(a, b, 6) || memcmp(a + 24, b + 24, 4) || memcmp(a + 32, b + 32, 288 - 32);
}

/* Runs the prepared case: 0 when it reached a landing pad, 1 when it faulted
 * (details in `fault`).  Kept apart from main so no local of main lives
 * across the siglongjmp. */
static int execute(void) {
  in_case = 1;
  if (sigsetjmp(fault_jb, 1) == 0) {
    run_case();
    in_case = 0;
    return 0;
  }
  in_case = 0;
  host_reset();
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 3) die("usage: harness <cases.bin> <results.bin>");
  FILE *f = fopen(argv[1], "rb");
  if (!f) die("cannot open cases file");
  fseek(f, 0, SEEK_END);
  long flen = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *in = malloc((size_t)flen);
  if (!in || fread(in, 1, (size_t)flen, f) != (size_t)flen) die("cannot read cases file");
  fclose(f);

  size_t pos = 0;
#define NEED(n) do { if (pos + (n) > (size_t)flen) die("truncated cases file"); } while (0)
  uint32_t magic, ncases;
  NEED(8 + 2 * AREA + 512);
  memcpy(&magic, in, 4);
  memcpy(&ncases, in + 4, 4);
  if (magic != MAGIC_IN) die("bad cases magic (harness and generator out of date?)");
  pos = 8;
  memcpy(pristine[0], in + pos, AREA); pos += AREA;
  memcpy(pristine[1], in + pos, AREA); pos += AREA;
  memcpy(fx_default, in + pos, 512); pos += 512;

  map_fixed(CODE_LO, CODE_HI - CODE_LO, PROT_READ | PROT_WRITE | PROT_EXEC);
  map_fixed(DATA_AT, AREA, PROT_READ | PROT_WRITE);
  map_fixed(STACK_AT, AREA, PROT_READ | PROT_WRITE);
  save_vec = (void *)save_state;
  for (uint32_t a = CODE_LO; a < CODE_HI; a += SLOT) put_landing(a, a);
  for (int i = 0; i < 2; i++) {
    memcpy((void *)(uintptr_t)area_at[i], pristine[i], AREA);
    memcpy(shadow[i], pristine[i], AREA);
  }

  /* The test may leave ESP anywhere, so signals run on their own stack. */
  static uint8_t altstack[1 << 16];
  stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
  if (sigaltstack(&ss, NULL)) die("sigaltstack failed");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_signal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP};
  for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    if (sigaction(sigs[i], &sa, NULL)) die("sigaction failed");

  uint8_t *fx_base;
  for (uint32_t c = 0; c < ncases; c++) {
    case_no = c;
    NEED(48);
    memcpy(in_gpr, in + pos, 32);
    memcpy(&in_eflags, in + pos + 32, 4);
    uint8_t len = in[pos + 36], npatch = in[pos + 37], hasfx = in[pos + 38];
    const uint8_t *code = in + pos + 40; /* 16 bytes, 15 used at most */
    pos += 56;
    if (len == 0 || len > 15) die("bad instruction length");
    uint32_t touched[64][2];
    if (npatch > 64) die("too many patches");
    for (unsigned p = 0; p < npatch; p++) {
      uint32_t addr, n;
      NEED(8);
      memcpy(&addr, in + pos, 4);
      memcpy(&n, in + pos + 4, 4);
      pos += 8;
      NEED((n + 3) & ~3u);
      int a = area_of(addr, n);
      if (a < 0) die("patch outside the data and stack areas");
      memcpy((void *)(uintptr_t)addr, in + pos, n);
      memcpy(shadow[a] + (addr - area_at[a]), in + pos, n);
      touched[p][0] = addr;
      touched[p][1] = n;
      pos += (n + 3) & ~3u;
    }
    if (hasfx) {
      NEED(512);
      fx_base = in + pos;
      pos += 512;
    } else {
      fx_base = fx_default;
    }
    memcpy(fx_in, fx_base, 512);
    memcpy(fx_out, fx_base, 512); /* fields FXSAVE leaves alone keep the input */
    memcpy((void *)(uintptr_t)CODE_AT, code, len);
    put_landing(CODE_AT + len, CODE_AT + len);

    int32_t vector = -1;
    uint32_t signo = 0, sicode = 0, err = 0, faddr = 0, eip, efl, gpr[8];
    const uint8_t *fx_res = fx_out;
    if (execute() == 0) {
      eip = landed_eip;
      efl = out_eflags;
      memcpy(gpr, out_gpr, 32);
    } else {
      vector = fault.vector;
      signo = fault.signo;
      sicode = fault.code;
      err = fault.err;
      faddr = fault.addr;
      eip = fault.eip;
      efl = fault.efl;
      memcpy(gpr, fault.gpr, 32);
      fx_res = fault.fx;
      if (!fault.fx_valid) die("signal frame has no FXSR image");
    }

    /* Memory: report every byte that differs from the case's initial
     * contents, then put pristine contents back for the next case. */
    uint32_t nchg = 0;
    size_t nchg_at;
    emit32((uint32_t)vector);
    emit32(signo);
    emit32(sicode);
    emit32(err);
    emit32(faddr);
    emit32(eip);
    emit(gpr, 32);
    emit32(efl);
    int send_fx = hasfx || fx_differs(fx_res, fx_base);
    emit32((uint32_t)send_fx);
    nchg_at = olen;
    emit32(0);
    for (int a = 0; a < 2; a++) {
      uint8_t *live = (uint8_t *)(uintptr_t)area_at[a];
      for (uint32_t off = 0; off < AREA; off += 64) {
        if (memcmp(live + off, shadow[a] + off, 64) == 0) continue;
        for (uint32_t k = off; k < off + 64; k++) {
          if (live[k] == shadow[a][k]) continue;
          emit32(area_at[a] + k);
          emit32(live[k]);
          nchg++;
          live[k] = pristine[a][k];
        }
      }
    }
    memcpy(ob + nchg_at, &nchg, 4);
    for (unsigned p = 0; p < npatch; p++) {
      int a = area_of(touched[p][0], touched[p][1]);
      uint32_t off = touched[p][0] - area_at[a];
      memcpy((void *)(uintptr_t)touched[p][0], pristine[a] + off, touched[p][1]);
      memcpy(shadow[a] + off, pristine[a] + off, touched[p][1]);
    }
    if (send_fx) emit(fx_res, 512);
  }
  if (pos != (size_t)flen) die("trailing bytes in cases file");

  FILE *o = fopen(argv[2], "wb");
  if (!o) die("cannot create results file");
  uint32_t hdr[2] = {MAGIC_OUT, ncases};
  if (fwrite(hdr, 4, 2, o) != 2 || fwrite(ob, 1, olen, o) != olen || fclose(o)) die("cannot write results file");
  return 0;
}
