/*
 * x87 oracle for test/float80.test.ts: runs one x87 instruction per input record on the host FPU.
 *
 * Input on stdin: records of 40 bytes  { u32 op; u32 cw; u8 a[16]; u8 b[16]; }
 * Output on stdout: records of 36 bytes { u8 st0[16]; u8 st1[16]; u32 sw; }
 * a and b are 80-bit values (10 bytes, little endian), or raw integer/float/BCD memory images for the
 * load operations. ST0 is loaded with a, ST1 with b (b is pushed first). After the instruction the
 * status word is read with FNSTSW and the exceptions are cleared with FNCLEX *before* the results are
 * stored: with unmasked exceptions the next waiting x87 instruction would otherwise raise #MF
 * (Intel SDM vol. 1 §8.7), and this way the oracle also observes the exponent-biased results that
 * unmasked overflow/underflow leave in the register (SDM vol. 1 §8.5.4, §8.5.5).
 * For the integer/float/BCD store operations, st0[] receives the memory image that was written.
 * Built with gcc -O0 by the test into a temporary directory, for the host's own mode (x86-64 here): the x87
 * instructions and their memory operands mean the same in 32- and 64-bit code.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct { uint32_t op, cw; uint8_t a[16], b[16]; } In;
typedef struct { uint8_t r1[16], r2[16]; uint32_t sw; } Out;

/* Binary/unary register operation: ST0=a, ST1=b, run INSN, read SW, clear, store ST0 and ST1. */
#define REGOP(INSN)                                                              \
  __asm__ volatile("fninit\n\tfldcw %[cw]\n\tfldt %[b]\n\tfldt %[a]\n\tfnclex\n\t" \
                   INSN "\n\tfnstsw %[sw]\n\tfnclex\n\tfstpt %[r1]\n\tfstpt %[r2]\n\tfninit" \
                   : [sw] "=m"(sw), [r1] "=m"(o.r1), [r2] "=m"(o.r2)             \
                   : [cw] "m"(cw), [a] "m"(in.a), [b] "m"(in.b)                  \
                   : "memory")
/* Load from memory format (a holds the image), then store ST0 as 80-bit. */
#define LOADOP(INSN)                                                             \
  __asm__ volatile("fninit\n\tfldcw %[cw]\n\tfnclex\n\t" INSN " %[a]\n\t"      \
                   "fnstsw %[sw]\n\tfnclex\n\tfstpt %[r1]\n\tfninit"             \
                   : [sw] "=m"(sw), [r1] "=m"(o.r1)                              \
                   : [cw] "m"(cw), [a] "m"(in.a)                                 \
                   : "memory")
/* Store ST0=a to memory format into r1. */
#define STOREOP(INSN)                                                            \
  __asm__ volatile("fninit\n\tfldcw %[cw]\n\tfldt %[a]\n\tfnclex\n\t" INSN " %[r1]\n\t" \
                   "fnstsw %[sw]\n\tfnclex\n\tfninit"                            \
                   : [sw] "=m"(sw), [r1] "=m"(o.r1)                              \
                   : [cw] "m"(cw), [a] "m"(in.a)                                 \
                   : "memory")

int main(void) {
  In in;
  Out o;
  setvbuf(stdout, NULL, _IOFBF, 1 << 16);
  while (fread(&in, sizeof in, 1, stdin) == 1) {
    uint16_t sw = 0, cw = (uint16_t)in.cw;
    memset(&o, 0, sizeof o);
    switch (in.op) {
      case 1: REGOP("fadd %%st(1), %%st"); break;
      case 2: REGOP("fsub %%st(1), %%st"); break;
      case 3: REGOP("fmul %%st(1), %%st"); break;
      case 4: REGOP("fdiv %%st(1), %%st"); break;
      case 5: REGOP("fsqrt"); break;
      case 6: REGOP("frndint"); break;
      case 7: REGOP("fcom %%st(1)"); break;
      case 8: REGOP("fucom %%st(1)"); break;
      case 9: REGOP("fprem"); break;
      case 10: REGOP("fprem1"); break;
      case 11: REGOP("fscale"); break;
      case 12: REGOP("fxtract"); break;
      case 13: LOADOP("filds"); break;
      case 14: LOADOP("fildl"); break;
      case 15: LOADOP("fildll"); break;
      case 16: STOREOP("fistps"); break;
      case 17: STOREOP("fistpl"); break;
      case 18: STOREOP("fistpll"); break;
      case 19: LOADOP("flds"); break;
      case 20: LOADOP("fldl"); break;
      case 21: STOREOP("fstps"); break;
      case 22: STOREOP("fstpl"); break;
      case 23: LOADOP("fbld"); break;
      case 24: STOREOP("fbstp"); break;
      case 25: REGOP("fsin"); break;
      case 26: REGOP("fcos"); break;
      case 27: REGOP("fsincos"); break;
      case 28: REGOP("fptan"); break;
      case 29: REGOP("fpatan"); break;
      case 30: REGOP("f2xm1"); break;
      case 31: REGOP("fyl2x"); break;
      case 32: REGOP("fyl2xp1"); break;
      case 33: STOREOP("fisttps"); break;
      case 34: STOREOP("fisttpl"); break;
      case 35: STOREOP("fisttpll"); break;
      default: sw = 0xffff; break;
    }
    o.sw = sw;
    fwrite(&o, sizeof o, 1, stdout);
  }
  return 0;
}
