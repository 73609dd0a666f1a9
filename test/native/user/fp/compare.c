/* Comparisons, classification and min/max with NaNs, infinities, signed zeros and denormals: every
 * predicate (==, !=, <, <=, >, >=, isless..., isunordered) over every pair, plus the flags they raise
 * (ordered comparisons of a quiet NaN raise FE_INVALID, the isless family must not). */
#include "common.h"

static volatile double V[] = { 0.0, -0.0, 1.0, -1.0, 4.9406564584124654e-324, -2.2250738585072014e-308, 1e308,
  INFINITY, -INFINITY, NAN, -NAN };
static volatile long double LV[] = { 0.0L, -0.0L, 1.0L, 1e-4945L, INFINITY, NAN };
static volatile float FV[] = { 0.0f, -0.0f, 1.0f, 1e-45f, INFINITY, NAN };
#define N(a) (int)(sizeof(a) / sizeof((a)[0]))

static const char *cls(int c) {
  switch (c) {
    case FP_NAN: return "nan"; case FP_INFINITE: return "inf"; case FP_ZERO: return "zero";
    case FP_SUBNORMAL: return "sub"; case FP_NORMAL: return "norm"; default: return "?";
  }
}

int main(void) {
  for (int i = 0; i < N(V); i++) {
    double a = V[i];
    printf("v%d isnan %d isinf %d isfinite %d isnormal %d signbit %d class %s\n", i, isnan(a) != 0, isinf(a),
           isfinite(a) != 0, isnormal(a) != 0, signbit(a) != 0, cls(fpclassify(a)));
    for (int j = 0; j < N(V); j++) {
      double b = V[j];
      feclearexcept(FE_ALL_EXCEPT);
      int r = (a == b) | (a != b) << 1 | (a < b) << 2 | (a <= b) << 3 | (a > b) << 4 | (a >= b) << 5;
      int fe = fetestexcept(FE_INVALID) != 0;
      feclearexcept(FE_ALL_EXCEPT);
      int q = isless(a, b) | isgreater(a, b) << 1 | islessequal(a, b) << 2 | isgreaterequal(a, b) << 3 |
              islessgreater(a, b) << 4 | isunordered(a, b) << 5;
      int qe = fetestexcept(FE_INVALID) != 0;
      printf("v%d,v%d rel %02x inv %d quiet %02x inv %d fmin %.17g fmax %.17g copysign %.17g\n", i, j, r, fe, q, qe,
             fmin(a, b), fmax(a, b), copysign(a, b));
    }
  }
  for (int i = 0; i < N(LV); i++) {
    long double a = LV[i];
    printf("L%d isnan %d isinf %d signbit %d class %s\n", i, isnan(a) != 0, isinf(a), signbit(a) != 0, cls(fpclassify(a)));
    for (int j = 0; j < N(LV); j++) {
      long double b = LV[j];
      feclearexcept(FE_ALL_EXCEPT);
      int r = (a == b) | (a < b) << 1 | (a >= b) << 2 | isunordered(a, b) << 3 | isless(a, b) << 4;
      printf("L%d,L%d %02x", i, j, r); pflags("");
    }
  }
  for (int i = 0; i < N(FV); i++) {
    float a = FV[i];
    printf("F%d isnan %d signbit %d class %s\n", i, isnan(a) != 0, signbit(a) != 0, cls(fpclassify(a)));
    for (int j = 0; j < N(FV); j++) {
      float b = FV[j];
      feclearexcept(FE_ALL_EXCEPT);
      int r = (a == b) | (a < b) << 1 | (a >= b) << 2 | isunordered(a, b) << 3 | isgreater(a, b) << 4;
      printf("F%d,F%d %02x", i, j, r); pflags("");
      /* Branch-free selects: gcc uses minss/maxss (SSE) or fcmov (387) for these. */
      volatile float mn = a < b ? a : b, mx = a > b ? a : b;
      printf("   sel %08x %08x\n", fbits(mn), fbits(mx));
    }
  }
  /* A signed zero produced by arithmetic, and NaN sign/payload propagation through add. */
  volatile double z = V[0], nz = V[1], qn = V[9], one = V[2];
  pd("0+-0", z + nz); pd("-0+-0", nz + nz); pd("-0*1", nz * one); pd("nan+1", qn + one); pd("1+nan", one + qn);
  pd("-nan", -qn); pd("0/0", z / z); pd("inf-inf", V[7] + V[8]);
  return 0;
}
