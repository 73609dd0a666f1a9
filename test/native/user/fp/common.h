/* Shared helpers for the floating-point differential programs. Every operand goes through a volatile so
 * gcc -O2 cannot constant-fold the operation away: the point is to execute the FPU/SSE instruction. */
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <float.h>
#include <math.h>
#include <fenv.h>

static const int modes[4] = { FE_TONEAREST, FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO };
static const char *const mode_names[4] = { "nearest", "down", "up", "zero" };

/* Bit images as well as decimal: %.17g round-trips a double, but hex also shows NaN payloads and the sign
 * of zero without relying on printf's own handling of them. */
static inline uint64_t dbits(double d) { uint64_t u; memcpy(&u, &d, 8); return u; }
static inline uint32_t fbits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline void pd(const char *tag, double d) { printf("%s %.17g %016llx\n", tag, d, (unsigned long long)dbits(d)); }
static inline void pf(const char *tag, float f) { printf("%s %.9g %08x\n", tag, (double)f, fbits(f)); }
static inline void pld(const char *tag, long double x) {
  unsigned char b[10]; memcpy(b, &x, 10);
  printf("%s %.21Lg %02x%02x", tag, x, b[9], b[8]);
  for (int i = 7; i >= 0; i--) printf("%02x", b[i]);
  printf("\n");
}
/* Hex only: printf's decimal conversion of values like 1e4000 costs millions of instructions of bignum
 * arithmetic, which would dominate the run time without testing any more floating point. */
static inline void pldx(const char *tag, long double x) {
  unsigned char b[10]; memcpy(b, &x, 10);
  printf("%s %02x%02x", tag, b[9], b[8]);
  for (int i = 7; i >= 0; i--) printf("%02x", b[i]);
  printf("\n");
}
/* The five standard flags as letters, so a line shows exactly which were raised. */
static inline void pflags(const char *tag) {
  int e = fetestexcept(FE_ALL_EXCEPT);
  printf("%s flags=%c%c%c%c%c\n", tag, e & FE_INVALID ? 'I' : '-', e & FE_DIVBYZERO ? 'Z' : '-',
         e & FE_OVERFLOW ? 'O' : '-', e & FE_UNDERFLOW ? 'U' : '-', e & FE_INEXACT ? 'P' : '-');
}
