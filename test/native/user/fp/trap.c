/* Unmasked floating-point exceptions: feenableexcept() unmasks one exception, then an operation that
 * raises it must kill the process with SIGFPE (#MF from the x87 at the next waiting instruction, #XM from
 * SSE immediately). Also the x87 precision-control field: with PC set to 24 or 53 bits, x87 arithmetic
 * rounds the significand there while keeping the extended exponent range. argv[1] picks the case. */
#define _GNU_SOURCE
#include "common.h"
#include <stdlib.h>
#include <fpu_control.h>

static volatile double one = 1.0, zero = 0.0, big = 1e308, three = 3.0;
static volatile long double lone = 1.0L, lthree = 3.0L, lbig = 1e4000L, ltiny = 1e-4000L;

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  volatile double r;
  printf("before\n");
  fflush(stdout);
  if (!strcmp(mode, "divbyzero")) { feenableexcept(FE_DIVBYZERO); r = one / zero; }
  else if (!strcmp(mode, "invalid")) { feenableexcept(FE_INVALID); r = zero / zero; }
  else if (!strcmp(mode, "overflow")) { feenableexcept(FE_OVERFLOW); r = big * big; }
  else if (!strcmp(mode, "inexact")) { feenableexcept(FE_INEXACT); r = one / three; }
  else if (!strcmp(mode, "masked")) { feenableexcept(FE_DIVBYZERO); fedisableexcept(FE_DIVBYZERO); r = one / zero; }
  else if (!strcmp(mode, "precision")) {
    static const struct { const char *name; fpu_control_t pc; } pcs[] = {
      { "single", _FPU_SINGLE }, { "double", _FPU_DOUBLE }, { "extended", _FPU_EXTENDED } };
    for (int i = 0; i < 3; i++) {
      fpu_control_t cw;
      _FPU_GETCW(cw);
      cw = (cw & ~_FPU_EXTENDED) | pcs[i].pc;
      _FPU_SETCW(cw);
      for (int m = 0; m < 4; m++) {
        fesetround(modes[m]);
        char tag[40];
        snprintf(tag, sizeof tag, "%s %s 1/3", pcs[i].name, mode_names[m]); pldx(tag, lone / lthree);
        snprintf(tag, sizeof tag, "%s %s big*big", pcs[i].name, mode_names[m]); pldx(tag, lbig * lbig / lbig);
        snprintf(tag, sizeof tag, "%s %s tiny*3", pcs[i].name, mode_names[m]); pldx(tag, ltiny * lthree);
        snprintf(tag, sizeof tag, "%s %s sqrt", pcs[i].name, mode_names[m]); pldx(tag, sqrtl(lthree));
        snprintf(tag, sizeof tag, "%s %s 1+3", pcs[i].name, mode_names[m]); pldx(tag, lone + lthree / 1e20L);
      }
    }
    fesetround(FE_TONEAREST);
    fpu_control_t dflt = _FPU_DEFAULT;
    _FPU_SETCW(dflt);
    r = 0;
  }
  else { printf("usage: trap divbyzero|invalid|overflow|inexact|masked|precision\n"); return 2; }
  /* A later floating-point instruction is where the x87 reports a pending unmasked exception. */
  volatile double s = r + 1.0;
  printf("after %g\n", s);
  return 0;
}
