/* Random-operand differential: thousands of operand pairs with random bit patterns biased towards the
 * hard cases (denormals, exponents near overflow and underflow, NaNs with payloads, infinities, zeros,
 * all-ones significands), through each operation in each rounding mode. Each (operation, mode) prints an
 * FNV-1a hash of the result bits and the exception flags raised, so a mismatch names the operation and
 * mode; argv[1] = "dump" prints every result instead, to find the operand pair. */
#include "common.h"
#include <stdlib.h>

static uint64_t state = 0x9e3779b97f4a7c15ULL;
static uint64_t next(void) { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return state; }

static double rdouble(void) {
  uint64_t r = next(), sig = next() & 0xfffffffffffffULL, e;
  switch (r & 7) {
    case 0: e = 0; break;                                /* zero or denormal */
    case 1: e = 0x7ff; sig &= (r & 8) ? ~0ULL : 0; break; /* infinity or NaN */
    case 2: e = 1 + (r >> 8) % 60; break;                /* near the bottom */
    case 3: e = 0x7fe - (r >> 8) % 60; break;            /* near the top */
    case 4: sig |= 0xffffffffff000ULL; e = 1023 + (r >> 8) % 64 - 32; break;
    default: e = 1023 + (r >> 8) % 128 - 64; break;
  }
  uint64_t bits = (r >> 63) << 63 | e << 52 | sig;
  double d; memcpy(&d, &bits, 8); return d;
}

static uint64_t h;
static int dump;
static void mix(uint64_t v) { for (int i = 0; i < 8; i++) { h ^= (v >> (i * 8)) & 0xff; h *= 0x100000001b3ULL; } }
static void rec(int i, uint64_t bits, double a, double b) {
  int f = fetestexcept(FE_ALL_EXCEPT);
  mix(bits); mix((uint64_t)f);
  if (dump) printf("  %d %016llx %016llx -> %016llx %02x\n", i, (unsigned long long)dbits(a), (unsigned long long)dbits(b), (unsigned long long)bits, f);
}

#define NP 1500
static volatile double A[NP], B[NP];
static const char *const ops[] = { "add", "sub", "mul", "div", "sqrt", "d2f", "f2d", "d2i", "d2ll", "i2f", "ld-mul", "ld-div", "ld2d", "cmp", "rint" };

int main(int argc, char **argv) {
  dump = argc > 1 && !strcmp(argv[1], "dump");
  for (int i = 0; i < NP; i++) { A[i] = rdouble(); B[i] = rdouble(); }
  for (int m = 0; m < 4; m++) {
    fesetround(modes[m]);
    for (int op = 0; op < (int)(sizeof ops / sizeof ops[0]); op++) {
      h = 0xcbf29ce484222325ULL;
      if (dump) printf("%s %s\n", mode_names[m], ops[op]);
      for (int i = 0; i < NP; i++) {
        double a = A[i], b = B[i];
        feclearexcept(FE_ALL_EXCEPT);
        uint64_t r = 0;
        switch (op) {
          case 0: { volatile double x = a + b; r = dbits(x); break; }
          case 1: { volatile double x = a - b; r = dbits(x); break; }
          case 2: { volatile double x = a * b; r = dbits(x); break; }
          case 3: { volatile double x = a / b; r = dbits(x); break; }
          case 4: { volatile double x = sqrt(a); r = dbits(x); break; }
          case 5: { volatile float x = (float)a; r = fbits(x); break; }
          case 6: { volatile float f = (float)b; feclearexcept(FE_ALL_EXCEPT); volatile double x = f * (double)f; r = dbits(x); break; }
          case 7: { volatile int x = (int)(a * 1e-300 * 1e300 / 1e280); r = (uint32_t)x; break; }
          case 8: { volatile long long x = (long long)(a / 1e270); r = (uint64_t)x; break; }
          case 9: { volatile float x = (float)(int)(uint32_t)(dbits(a) >> 20); r = fbits(x); break; }
          case 10: { volatile long double x = (long double)a * b * b; r = dbits((double)x) ^ (uint64_t)(x != x); break; }
          case 11: { volatile long double x = (long double)a / b; unsigned char by[10]; long double y = x; memcpy(by, &y, 10);
                     memcpy(&r, by, 8); r ^= (uint64_t)(by[8] | by[9] << 8) << 48; break; }
          case 12: { volatile long double x = (long double)a * 1.0000000000000000001L; volatile double y = (double)x; r = dbits(y); break; }
          case 13: { r = (a < b) | (a <= b) << 1 | (a == b) << 2 | (a != b) << 3 | (uint64_t)isunordered(a, b) << 4 | (uint64_t)isgreater(a, b) << 5; break; }
          case 14: { volatile double x = rint(a) + nearbyint(b); r = dbits(x); break; }
        }
        rec(i, r, a, b);
      }
      printf("%s %-6s %016llx\n", mode_names[m], ops[op], (unsigned long long)h);
    }
  }
  return 0;
}
