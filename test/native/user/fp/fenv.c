/* Floating-point exception flags: each of FE_INVALID, FE_DIVBYZERO, FE_OVERFLOW, FE_UNDERFLOW and
 * FE_INEXACT raised by a real operation in float, double and long double, tested one operation at a
 * time; plus fegetenv/fesetenv and feholdexcept/feupdateenv round trips and rounding-mode readback. */
#include "common.h"

static volatile double one = 1.0, zero = 0.0, three = 3.0, big = 1e308, tiny = 2.2250738585072014e-308, inf = INFINITY,
  qnan = NAN, m1 = -1.0, two = 2.0, den = 4.9406564584124654e-324;
static volatile float fone = 1.0f, fzero = 0.0f, fthree = 3.0f, fbig = 3e38f, ftiny = 1.2e-38f;
static volatile long double lone = 1.0L, lzero = 0.0L, lthree = 3.0L, lbig = 1e4930L, ltiny = 3.4e-4932L;

#define T(label, stmt) do { feclearexcept(FE_ALL_EXCEPT); stmt; pflags(label); } while (0)

int main(void) {
  volatile double r; volatile float f; volatile long double l; volatile int n; volatile long long q;
  T("none", r = one + two);
  T("inexact 1/3", r = one / three);
  T("divbyzero 1/0", r = one / zero);
  T("invalid 0/0", r = zero / zero);
  T("invalid inf-inf", r = inf - inf);
  T("invalid 0*inf", r = zero * inf);
  T("invalid sqrt(-1)", r = sqrt(m1));
  T("overflow big*big", r = big * big);
  T("underflow tiny*tiny", r = tiny * tiny);
  T("underflow exact denormal", r = tiny / two);        /* exact tiny result: no UE when masked (no inexact) */
  T("underflow inexact denormal", r = tiny / three);
  T("denormal operand", r = den * two);
  T("qnan arith", r = qnan + one);                       /* quiet NaN operand: no flags */
  T("qnan compare <", n = qnan < one);                   /* ordered compare: invalid */
  T("qnan compare ==", n = qnan == one);                 /* unordered compare: no flags */
  T("int overflow", n = (int)big);
  T("ll overflow", q = (long long)big);
  T("int nan", n = (int)qnan);
  T("int inexact", n = (int)(one / three * 10));
  T("d->f overflow", f = (float)big);
  T("d->f underflow", f = (float)tiny);
  T("d->f inexact", f = (float)(one / three));
  T("f inexact", f = fone / fthree);
  T("f divbyzero", f = fone / fzero);
  T("f overflow", f = fbig * fbig);
  T("f underflow", f = ftiny * ftiny);
  T("f invalid", f = fzero / fzero);
  T("ld inexact", l = lone / lthree);
  T("ld divbyzero", l = lone / lzero);
  T("ld overflow", l = lbig * lbig);
  T("ld underflow", l = ltiny * ltiny);
  T("ld invalid", l = lzero / lzero);
  T("ld->d overflow", r = (double)lbig);
  T("ld->d underflow", r = (double)ltiny);
  T("libm log(0)", r = log(zero));
  T("libm exp(1000)", r = exp(big / 1e305));
  T("libm pow(-1,0.5)", r = pow(m1, 0.5));
  (void)r; (void)f; (void)l; (void)n; (void)q;

  /* feraiseexcept sets exactly what is asked, both in the x87 status word and MXCSR. */
  feclearexcept(FE_ALL_EXCEPT);
  feraiseexcept(FE_OVERFLOW | FE_INEXACT);
  pflags("raise O|P");
  fexcept_t saved; fegetexceptflag(&saved, FE_ALL_EXCEPT);
  feclearexcept(FE_ALL_EXCEPT);
  fesetexceptflag(&saved, FE_OVERFLOW);
  pflags("restore O only");

  /* Environment round trips. */
  fenv_t env;
  fesetround(FE_UPWARD);
  feclearexcept(FE_ALL_EXCEPT);
  r = one / three;
  fegetenv(&env);
  fesetround(FE_DOWNWARD);
  feclearexcept(FE_ALL_EXCEPT);
  printf("round after set down %d\n", fegetround() == FE_DOWNWARD);
  fesetenv(&env);
  printf("round after fesetenv up %d\n", fegetround() == FE_UPWARD);
  pflags("flags after fesetenv");
  fenv_t hold;
  feholdexcept(&hold);
  pflags("after hold");
  r = one / zero;
  pflags("inside hold");
  feupdateenv(&hold);
  pflags("after update");
  fesetround(FE_TONEAREST);
  fesetenv(FE_DFL_ENV);
  pflags("dfl");
  printf("round dfl nearest %d\n", fegetround() == FE_TONEAREST);
  /* The rounding mode affects results computed afterwards, in whichever unit the build uses. */
  for (int m = 0; m < 4; m++) {
    fesetround(modes[m]);
    volatile double a = one / three, b = -one / three;
    volatile float c = fone / fthree;
    volatile long double d = lone / lthree;
    printf("%s %016llx %016llx %08x ", mode_names[m], (unsigned long long)dbits(a), (unsigned long long)dbits(b), fbits(c));
    pld("", d);
  }
  return 0;
}
