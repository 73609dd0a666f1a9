/* printf/strtod round trips of awkward decimals: halfway cases, denormals, the extremes of float, double
 * and long double, and very long inputs that need every digit to round correctly. Everything here is
 * exact (glibc does correctly rounded conversion with integer multiprecision, plus FPU loads/stores). */
#include "common.h"
#include <stdlib.h>

static const char *const inputs[] = {
  "0.1", "0.2", "0.3", "1e23", "8.98846567431158e307", "1.7976931348623157e308", "1.7976931348623158e308", "1.8e308",
  "2.2250738585072014e-308", "2.2250738585072011e-308", "4.9406564584124654e-324", "5e-324", "2.4703282292062328e-324",
  "2.4703282292062327e-324", "1e-400", "9007199254740993", "9007199254740992.5", "123456789012345678901234567890",
  "3.14159265358979323846264338327950288", "-0", "0x1.fffffffffffffp1023", "0x1p-1074", "inf", "-nan", "1.00000000000000011102230246251565404236316680908203125",
  "1.000000000000000111022302462515654042363166809082031250000000000000000000000001", "7.2057594037927933e16", "2.5e-1",
  "0.000000000000000000000000000000000000000000000000000001",
};

int main(void) {
  for (int m = 0; m < 4; m++) {
    fesetround(modes[m]);
    printf("== %s\n", mode_names[m]);
    for (unsigned i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
      char *end;
      double d = strtod(inputs[i], &end);
      float f = strtof(inputs[i], &end);
      long double l = strtold(inputs[i], &end);
      printf("%s -> %.17g %a %.9g %.21Lg\n", inputs[i], d, d, (double)f, l);
      /* Round trip: shortest-ish %.17g text must parse back to the same bits in round-to-nearest. */
      char buf[64];
      snprintf(buf, sizeof buf, "%.17g", d);
      double back = strtod(buf, NULL);
      printf("   back %d %.3e %.0f %g %La\n", dbits(back) == dbits(d), d, d < 1e30 && d > -1e30 ? d : 0.0, d, l);
    }
  }
  fesetround(FE_TONEAREST);
  printf("%.17g %.17g %.17g %.17g\n", DBL_MAX, DBL_MIN, DBL_EPSILON, DBL_TRUE_MIN);
  printf("%.21Lg %.21Lg %.21Lg %.21Lg\n", LDBL_MAX, LDBL_MIN, LDBL_EPSILON, LDBL_TRUE_MIN);
  printf("%La %La %Lg %Le\n", LDBL_MAX, LDBL_TRUE_MIN, LDBL_MAX, LDBL_TRUE_MIN);
  printf("%.9g %.9g %a\n", FLT_MAX, FLT_MIN, FLT_TRUE_MIN);
  printf("%.60f\n%.40e\n", 0.1, 1e-310);
  printf("%f %e %g %a %F\n", 1e300 * 1e10, -(1e300 * 1e10) * 0.0, 1e-5, -0.0, (double)NAN);
  return 0;
}
