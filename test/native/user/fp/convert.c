/* Conversions between int, long long, unsigned, float, double and long double in every rounding mode,
 * including out-of-range and NaN sources that give the "integer indefinite" (0x80000000...) value. */
#include "common.h"

static volatile double D[] = { 0.0, -0.0, 1.5, -1.5, 2.5, 2147483647.4, 2147483647.6, 2147483648.0, -2147483648.9,
  -2147483649.0, 4294967295.9, 4294967296.0, 9.2233720368547758e18, -9.2233720368547758e18, 1.8446744073709552e19,
  1e300, -1e300, 16777217.0, 3.4028235677973366e38, 3.4028236692093846e38, 1e-46, -1e-46, 1.1754942e-38,
  0.1, INFINITY, -INFINITY, NAN, -NAN };
static volatile int I[] = { 0, 1, -1, 16777217, 2147483647, -2147483647 - 1, 123456789, -987654321 };
static volatile long long LL[] = { 9007199254740993LL, -9007199254740993LL, 9223372036854775807LL, -9223372036854775807LL - 1,
  1234567890123456789LL, 72057594037927937LL };
static volatile unsigned long long ULL[] = { 18446744073709551615ULL, 9223372036854775809ULL, 4294967295ULL };
static volatile long double LD[] = { 1e4000L, -1e4000L, 1e-4000L, 0.1L, 9223372036854775807.0L, 9223372036854775808.0L,
  -9223372036854775808.0L, -9223372036854775809.0L, 1.7976931348623157e308L * 2, 3.5e-324L, 1.00000000000000011102L };
#define N(a) (int)(sizeof(a) / sizeof((a)[0]))

int main(void) {
  char tag[48];
  for (int m = 0; m < 4; m++) {
    fesetround(modes[m]);
    printf("== %s\n", mode_names[m]);
    for (int i = 0; i < N(D); i++) {
      double x = D[i];
      feclearexcept(FE_ALL_EXCEPT);
      volatile int ti = (int)x;               /* truncating: cvttsd2si / fisttp-less fistp with RC forced */
      volatile long long tl = (long long)x;
      volatile unsigned tu = (unsigned)x;
      printf("d%d int %d ll %lld u %u\n", i, ti, tl, tu);
      pflags("   ");
      feclearexcept(FE_ALL_EXCEPT);
      volatile float f = (float)x;            /* narrowing in the current rounding mode */
      snprintf(tag, sizeof tag, "d%d float", i); pf(tag, f);
      pflags("   ");
      volatile long double l = x;
      snprintf(tag, sizeof tag, "d%d ld", i); pld(tag, l);
      volatile double back = (double)(float)x;
      snprintf(tag, sizeof tag, "d%d viaf", i); pd(tag, back);
    }
    for (int i = 0; i < N(I); i++) {
      volatile float f = (float)I[i];
      volatile double d = (double)I[i];
      printf("i%d ", i); pf("float", f); printf("i%d ", i); pd("double", d);
    }
    for (int i = 0; i < N(LL); i++) {
      volatile float f = (float)LL[i];
      volatile double d = (double)LL[i];
      volatile long double l = (long double)LL[i];
      printf("ll%d ", i); pf("float", f); printf("ll%d ", i); pd("double", d); printf("ll%d ", i); pld("ld", l);
    }
    for (int i = 0; i < N(ULL); i++) {
      volatile double d = (double)ULL[i];
      volatile float f = (float)ULL[i];
      printf("ull%d ", i); pd("double", d); printf("ull%d ", i); pf("float", f);
      volatile double dd = D[i + 11];
      printf("ull%d back %llu\n", i, (unsigned long long)dd);
    }
    for (int i = 0; i < N(LD); i++) {
      long double x = LD[i];
      feclearexcept(FE_ALL_EXCEPT);
      volatile double d = (double)x;
      snprintf(tag, sizeof tag, "L%d double", i); pd(tag, d);
      pflags("   ");
      feclearexcept(FE_ALL_EXCEPT);
      volatile float f = (float)x;
      snprintf(tag, sizeof tag, "L%d float", i); pf(tag, f);
      pflags("   ");
      feclearexcept(FE_ALL_EXCEPT);
      volatile long long q = (long long)x;
      volatile int n = (int)x;
      printf("L%d ll %lld int %d\n", i, q, n);
      pflags("   ");
    }
    /* float → double → float round trips of every bit pattern class. */
    static const uint32_t fpat[] = { 0x00000001, 0x007fffff, 0x00800000, 0x7f7fffff, 0x7f800000, 0x7fc00000, 0x7fa00001, 0xff800001, 0x80000000 };
    for (int i = 0; i < N(fpat); i++) {
      float f; memcpy(&f, &fpat[i], 4);
      volatile float vf = f;
      volatile double d = vf;
      volatile float r = (float)d;
      printf("fp%d %016llx %08x\n", i, (unsigned long long)dbits(d), fbits(r));
    }
  }
  return 0;
}
