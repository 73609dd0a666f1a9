/* libm transcendentals in double, float and long double.
 *
 * Exactness policy: the static i386 glibc implements some of these with x87 transcendental instructions
 * (F2XM1, FYL2X, FYL2XP1, FPATAN: exp, log, log2, log10, pow, atan, atan2, asin, expm1, log1p, and sinh/tanh
 * through exp/expm1; every long double function), whose results the SDM bounds ("within 1 ulp", vol. 1
 * §8.3.10) rather than defines bit for bit, so the vCPU may legitimately differ from the host CPU in the
 * last bits of the 80-bit result. Those are printed with %.15g (double) / %.15Lg (long double), which
 * absorbs such differences. Everything computed with exactly specified operations (sin, cos, tan and cbrt
 * are plain C arithmetic in glibc; FSQRT for hypot, FPREM/FPREM1 for fmod/remainder, frexp, ldexp, modf,
 * and the float functions, which glibc picks SSE2 C code for) is printed with %.17g / %.21Lg and must
 * match bit for bit. (`objdump -d` of the static binary shows which functions use which instructions.) */
#include "common.h"
#include <stdlib.h>

static volatile double X[] = { 0.5, 1.0, 2.0, 3.14159265358979312, 10.0, 0.001, 1e-10, 100.5, -2.75, 1e22, 7.0e-5, 0.7853981633974483 };
static volatile long double LX[] = { 0.5L, 1.0L, 3.0L, 1e-5L, 12.25L, -0.75L };
#define N(a) (int)(sizeof(a) / sizeof((a)[0]))

#define EXACT(name, expr) printf("%d %s %.17g\n", i, name, (double)(expr))
#define X87(name, expr) printf("%d %s %.15g\n", i, name, (double)(expr))

int main(void) {
  for (int i = 0; i < N(X); i++) {
    double x = X[i], y = X[(i + 5) % N(X)];
    EXACT("sin", sin(x)); EXACT("cos", cos(x)); EXACT("tan", tan(x));
    X87("atan2", atan2(x, y)); X87("atan", atan(x));
    X87("exp", exp(x / 8)); X87("log", log(fabs(x))); X87("log2", log2(fabs(x))); X87("log10", log10(fabs(x)));
    X87("pow", pow(fabs(x), y / 4)); X87("sinh", sinh(x / 8)); X87("tanh", tanh(x)); X87("asin", asin(x / 1e23));
    EXACT("hypot", hypot(x, y)); EXACT("fmod", fmod(x, y)); EXACT("remainder", remainder(x, y));
    int e; double fr = frexp(x, &e);
    printf("%d frexp %.17g %d\n", i, fr, e);
    EXACT("ldexp", ldexp(x, 1000)); EXACT("ldexp-", ldexp(x, -1070));
    double ip, f = modf(x, &ip);
    printf("%d modf %.17g %.17g\n", i, f, ip);
    EXACT("cbrt", cbrt(x)); X87("expm1", expm1(x / 100)); X87("log1p", log1p(x / 1000));
    EXACT("sqrt", sqrt(fabs(x)));
    float xf = (float)x;
    printf("%d sinf %.9g expf %.9g logf %.9g powf %.9g\n", i, sinf(xf), expf(xf / 8), logf(fabsf(xf)), powf(fabsf(xf), 0.37f));
  }
  for (int i = 0; i < N(LX); i++) {
    long double x = LX[i], y = LX[(i + 1) % N(LX)];
    /* Long double transcendentals are all x87 instruction sequences: reduced precision (see above). */
    printf("%d sinl %.15Lg cosl %.15Lg expl %.15Lg logl %.15Lg atan2l %.15Lg powl %.15Lg\n", i, sinl(x), cosl(x), expl(x),
           logl(fabsl(x)), atan2l(x, y), powl(fabsl(x), y));
    int e; long double fr = frexpl(x, &e);
    printf("%d fmodl %.21Lg remainderl %.21Lg sqrtl %.21Lg ldexpl %.21Lg frexpl %.21Lg %d\n", i, fmodl(x, y), remainderl(x, y),
           sqrtl(fabsl(x)), ldexpl(x, -16000), fr, e);
  }
  /* FPREM on a huge quotient (many partial-remainder iterations) and remquo's quotient bits. */
  volatile double big = 1e300, small = 3.0000000000000004;
  int q;
  printf("fmod-big %.17g remquo %.17g ", fmod(big, small), remquo(big, small, &q));
  printf("q %d\n", q);
  volatile long double lbig = 1e4000L, lsmall = 7.1L;
  printf("fmodl-big %.21Lg\n", fmodl(lbig, lsmall));
  return 0;
}
