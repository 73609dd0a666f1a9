/* A small numeric kernel: matrix multiply, Newton iteration, Kahan summation and a Mandelbrot set that
 * prints a checksum. Long dependency chains make any single-ulp error visible in the printed results. */
#include "common.h"
#include <stdlib.h>

#define NM 24
static double A[NM][NM], B[NM][NM], C[NM][NM];

int main(int argc, char **argv) {
  int size = argc > 1 ? atoi(argv[1]) : 48;
  for (int i = 0; i < NM; i++)
    for (int j = 0; j < NM; j++) { A[i][j] = (i * 7 + j * 3) % 11 / 7.0 - 0.5; B[i][j] = 1.0 / (i + j + 1); }
  for (int i = 0; i < NM; i++)
    for (int j = 0; j < NM; j++) {
      double s = 0;
      for (int k = 0; k < NM; k++) s += A[i][k] * B[k][j];
      C[i][j] = s;
    }
  double tr = 0;
  for (int i = 0; i < NM; i++) tr += C[i][i] * (i + 1);
  printf("matmul trace %.17g c[3][5] %.17g\n", tr, C[3][5]);

  /* Newton's method for the cube root of 2 and for 1/7, stopping when the iterate stops changing. */
  double x = 1.0;
  int it = 0;
  for (double prev = 0; x != prev && it < 100; it++) { prev = x; x = x - (x * x * x - 2.0) / (3.0 * x * x); }
  printf("newton cbrt2 %.17g after %d\n", x, it);
  long double lx = 0.1L;
  for (it = 0; it < 8; it++) lx = lx * (2.0L - 7.0L * lx);
  printf("newton 1/7 %.21Lg\n", lx);

  /* Kahan vs naive summation of 1/k^2 (the naive sum's rounding errors differ visibly). */
  double naive = 0, sum = 0, comp = 0;
  for (int k = 1; k <= 20000; k++) {
    double term = 1.0 / ((double)k * k);
    naive += term;
    double y = term - comp, t = sum + y;
    comp = (t - sum) - y;
    sum = t;
  }
  printf("kahan %.17g naive %.17g comp %.17g\n", sum, naive, comp);

  /* Mandelbrot over a size×size grid: iteration counts summed and a weighted checksum of escape radii. */
  unsigned long long cs = 0;
  double radii = 0;
  for (int py = 0; py < size; py++)
    for (int px = 0; px < size; px++) {
      double cr = -2.0 + 2.6 * px / size, ci = -1.3 + 2.6 * py / size, zr = 0, zi = 0;
      int n = 0;
      while (n < 200 && zr * zr + zi * zi <= 4.0) { double t = zr * zr - zi * zi + cr; zi = 2 * zr * zi + ci; zr = t; n++; }
      cs = cs * 31 + n;
      radii += zr * zr + zi * zi < 1e10 ? zr * zr + zi * zi : 0;
    }
  printf("mandelbrot %dx%d checksum %llu radii %.17g\n", size, size, cs, radii);
  /* Single precision accumulates differently in the two builds; each build must still match itself. */
  float fs = 0;
  for (int k = 1; k <= 5000; k++) fs += 1.0f / k;
  printf("harmonic float %.9g\n", fs);
  return 0;
}
