/* Basic arithmetic in float, double and long double over rounding-sensitive operands, in all four
 * rounding modes: halfway cases, denormal results, overflow, cancellation, and signed zeros. */
#include "common.h"

static volatile double D[] = { 0.1, 0.2, 0.3, 1.0, 3.0, -7.0, 1e308, 2.2250738585072014e-308, 4.9406564584124654e-324,
  1.0000000000000002, 0.99999999999999989, 9007199254740993.0, 1e-300, -0.0, 0.0, 123456.789, 6.02214076e23, -2.5 };
static volatile float F[] = { 0.1f, 0.2f, 1.0f, 3.0f, -7.0f, 3.4e38f, 1.17549435e-38f, 1.4e-45f, 16777217.0f, -0.0f, 1.0000001f, 0.3f };
static volatile long double L[] = { 0.1L, 3.0L, 1e4000L, 3.3621031431120935063e-4932L, 1.0L + 0x1p-63L, -0.0L, 7.0L, 1e-4940L };
#define N(a) (int)(sizeof(a) / sizeof((a)[0]))

int main(void) {
  char tag[64];
  for (int m = 0; m < 4; m++) {
    fesetround(modes[m]);
    printf("== %s\n", mode_names[m]);
    for (int i = 0; i < N(D); i++)
      for (int j = 0; j < N(D); j += 3) {
        double a = D[i], b = D[j];
        snprintf(tag, sizeof tag, "d%d,%d +", i, j); pd(tag, a + b);
        snprintf(tag, sizeof tag, "d%d,%d -", i, j); pd(tag, a - b);
        snprintf(tag, sizeof tag, "d%d,%d *", i, j); pd(tag, a * b);
        snprintf(tag, sizeof tag, "d%d,%d /", i, j); pd(tag, a / b);
      }
    for (int i = 0; i < N(F); i++)
      for (int j = 0; j < N(F); j += 2) {
        float a = F[i], b = F[j];
        /* Stored to volatile floats so the 387 build rounds to single precision (the store does it). */
        volatile float s = a + b, d = a - b, p = a * b, q = a / b;
        snprintf(tag, sizeof tag, "f%d,%d", i, j);
        pf(tag, s); pf(tag, d); pf(tag, p); pf(tag, q);
      }
    for (int i = 0; i < N(L); i++)
      for (int j = 0; j < N(L); j++) {
        long double a = L[i], b = L[j];
        snprintf(tag, sizeof tag, "l%d,%d +", i, j); pldx(tag, a + b);
        snprintf(tag, sizeof tag, "l%d,%d -", i, j); pldx(tag, a - b);
        snprintf(tag, sizeof tag, "l%d,%d *", i, j); pldx(tag, a * b);
        snprintf(tag, sizeof tag, "l%d,%d /", i, j); pldx(tag, a / b);
      }
    /* A fused-looking expression: (a*b)+c has two roundings in both builds (no FMA on this target). */
    double acc = 0;
    for (int i = 0; i < N(D); i++) acc = acc * D[1] + D[i] / D[4];
    pd("horner", acc);
    long double lacc = 0;
    for (int i = 0; i < N(L); i++) lacc = lacc * L[0] + L[i] / L[1];
    pld("lhorner", lacc);
  }
  fesetround(FE_TONEAREST);
  return 0;
}
