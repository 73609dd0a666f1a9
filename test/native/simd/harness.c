// Native oracle for test/simd.test.ts: executes each case's single instruction on the host CPU (32-bit
// user mode) and records vector, GPRs, EFLAGS, a 64-byte data window and the FXSAVE image. On a fault the
// state is taken from the signal frame (the FXSAVE area follows the 112-byte legacy header).
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

#define CODE_ADDR 0x00100000u
#define DATA_ADDR 0x00200000u
enum { IN_SIZE = 16 + 32 + 4 + 64 + 512, OUT_SIZE = 4 + 32 + 4 + 64 + 512 };

uint8_t g_in_fx[512] __attribute__((aligned(16)));
uint8_t g_out_fx[512] __attribute__((aligned(16)));
uint32_t g_gpr[8], g_out_gpr[8], g_eflags, g_out_eflags;
void *g_code = (void *)CODE_ADDR;
void run_case(void);

static sigjmp_buf env;
static int32_t vector;

static void on_fault(int sig, siginfo_t *si, void *ctx) {
  (void)sig; (void)si;
  ucontext_t *uc = ctx;
  greg_t *g = uc->uc_mcontext.gregs;
  vector = g[REG_TRAPNO];
  const int map[8] = { REG_EAX, REG_ECX, REG_EDX, REG_EBX, REG_ESP, REG_EBP, REG_ESI, REG_EDI };
  for (int i = 0; i < 8; i++) g_out_gpr[i] = g[map[i]];
  g_out_eflags = g[REG_EFL];
  memcpy(g_out_fx, (uint8_t *)uc->uc_mcontext.fpregs + 112, 512);
  siglongjmp(env, 1);
}

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: harness in out\n"); return 2; }
  if (mmap((void *)CODE_ADDR, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED ||
      mmap((void *)DATA_ADDR, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
    perror("mmap"); return 1;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigaction(SIGSEGV, &sa, 0); sigaction(SIGFPE, &sa, 0); sigaction(SIGILL, &sa, 0); sigaction(SIGBUS, &sa, 0);
  FILE *fi = fopen(argv[1], "rb"), *fo = fopen(argv[2], "wb");
  if (!fi || !fo) { perror("open"); return 1; }
  static uint8_t in[IN_SIZE], out[OUT_SIZE];
  uint8_t *code = (uint8_t *)CODE_ADDR, *data = (uint8_t *)DATA_ADDR;
  while (fread(in, 1, IN_SIZE, fi) == IN_SIZE) {
    int len = in[15];
    memcpy(code, in, len);
    code[len] = 0xc3;
    memcpy(g_gpr, in + 16, 32);
    memcpy(&g_eflags, in + 48, 4);
    memcpy(data, in + 52, 64);
    memcpy(g_in_fx, in + 116, 512);
    vector = -1;
    if (!sigsetjmp(env, 1)) run_case();
    memcpy(out, &vector, 4);
    memcpy(out + 4, g_out_gpr, 32);
    memcpy(out + 36, &g_out_eflags, 4);
    memcpy(out + 40, data, 64);
    memcpy(out + 104, g_out_fx, 512);
    fwrite(out, 1, OUT_SIZE, fo);
  }
  fclose(fo);
  return 0;
}
