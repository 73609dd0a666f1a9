/* sqrt, fabs and the rounding-to-integer functions under every rounding mode, for halfway cases,
 * negatives, huge values beyond 2^52/2^63, infinities, NaN and signed zeros. */
#include "common.h"
#include <stdlib.h>

static volatile double V[] = { 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999999999999994, 2.0000000000000004, -3.7, 3.7,
  4503599627370495.5, 9007199254740991.0, 1e18, -1e18, 9.2233720368547758e18, 1e300, -0.0, 0.0, 1e-310, -1e-310,
  2.0, 1e10 + 0.5, INFINITY, -INFINITY, NAN };
static volatile long double LV[] = { 0.5L, 2.5L, -2.5L, 9223372036854775807.5L, -9223372036854775808.5L, 3.3L, 1e-4000L, 1e30L, -0.0L };
static volatile float FV[] = { 0.5f, 2.5f, -2.5f, 8388607.5f, 2.0f, 1e-40f, 3.0f, 1e30f };
#define N(a) (int)(sizeof(a) / sizeof((a)[0]))

int main(void) {
  char tag[48];
  for (int m = 0; m < 4; m++) {
    fesetround(modes[m]);
    printf("== %s\n", mode_names[m]);
    for (int i = 0; i < N(V); i++) {
      double x = V[i];
      snprintf(tag, sizeof tag, "%d sqrt", i); pd(tag, sqrt(x));
      snprintf(tag, sizeof tag, "%d fabs", i); pd(tag, fabs(x));
      snprintf(tag, sizeof tag, "%d floor", i); pd(tag, floor(x));
      snprintf(tag, sizeof tag, "%d ceil", i); pd(tag, ceil(x));
      snprintf(tag, sizeof tag, "%d trunc", i); pd(tag, trunc(x));
      snprintf(tag, sizeof tag, "%d round", i); pd(tag, round(x));
      snprintf(tag, sizeof tag, "%d rint", i); pd(tag, rint(x));
      snprintf(tag, sizeof tag, "%d nearbyint", i); pd(tag, nearbyint(x));
      /* lrint of an out-of-range value is the "integer indefinite" 0x80000000 from FIST/CVTSD2SI. */
      feclearexcept(FE_ALL_EXCEPT);
      long l = lrint(x);
      printf("%d lrint %ld\n", i, l); pflags("   ");
      feclearexcept(FE_ALL_EXCEPT);
      long long ll = llrint(x);
      printf("%d llrint %lld\n", i, ll); pflags("   ");
      printf("%d lround %ld llround %lld\n", i, lround(x), llround(x));
    }
    for (int i = 0; i < N(LV); i++) {
      long double x = LV[i];
      snprintf(tag, sizeof tag, "L%d sqrtl", i); pld(tag, sqrtl(x));
      snprintf(tag, sizeof tag, "L%d floorl", i); pld(tag, floorl(x));
      snprintf(tag, sizeof tag, "L%d ceill", i); pld(tag, ceill(x));
      snprintf(tag, sizeof tag, "L%d truncl", i); pld(tag, truncl(x));
      snprintf(tag, sizeof tag, "L%d roundl", i); pld(tag, roundl(x));
      snprintf(tag, sizeof tag, "L%d rintl", i); pld(tag, rintl(x));
      feclearexcept(FE_ALL_EXCEPT);
      printf("L%d llrintl %lld\n", i, llrintl(x)); pflags("   ");
    }
    for (int i = 0; i < N(FV); i++) {
      float x = FV[i];
      snprintf(tag, sizeof tag, "F%d sqrtf", i); pf(tag, sqrtf(x));
      snprintf(tag, sizeof tag, "F%d rintf", i); pf(tag, rintf(x));
      snprintf(tag, sizeof tag, "F%d floorf", i); pf(tag, floorf(x));
      printf("F%d lrintf %ld\n", i, lrintf(x));
    }
    /* sqrt of a value whose root is exactly between two doubles only in some modes. */
    volatile double two = 2.0, m1 = -1.0;
    pd("sqrt2", sqrt(two));
    feclearexcept(FE_ALL_EXCEPT);
    pd("sqrt-1", sqrt(m1)); pflags("   ");
  }
  return 0;
}
