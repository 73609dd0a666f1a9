/* Integer workload for the user-mode runner: arithmetic, 64-bit division (libgcc helpers), bit tricks,
   a sieve, CRC-32 and qsort; output must match a native run byte for byte. */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

static uint32_t crc32(const uint8_t *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & -(c & 1));
  }
  return ~c;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static __thread int tls_counter = 7; /* exercises %gs-relative TLS set up by set_thread_area */

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 200000;
  /* Sieve of Eratosthenes. */
  char *sieve = calloc(n + 1, 1);
  int primes = 0;
  for (int i = 2; i <= n; i++) {
    if (sieve[i]) continue;
    primes++;
    if (i <= n / i) for (int j = i * i; j <= n; j += i) sieve[j] = 1;
  }
  printf("primes below %d: %d\n", n, primes);
  /* Collatz lengths. */
  int best = 0, arg = 0;
  for (int i = 1; i < n / 4; i++) {
    uint64_t x = i; int len = 0;
    while (x != 1) { x = (x & 1) ? 3 * x + 1 : x / 2; len++; }
    if (len > best) { best = len; arg = i; }
  }
  printf("longest collatz below %d: %d (%d steps)\n", n / 4, arg, best);
  /* 64-bit multiply, divide, modulo, shifts (__udivdi3, __moddi3 on i386). */
  uint64_t h = 0xcbf29ce484222325ull;
  int64_t acc = 0;
  for (int i = 1; i < 5000; i++) {
    h = (h ^ (uint64_t)i) * 0x100000001b3ull;
    acc += (int64_t)(h % 1000003) - (int64_t)(h / 0x123456789ull % 77);
    acc ^= (int64_t)h >> (i & 31);
  }
  printf("fnv %016llx acc %lld\n", (unsigned long long)h, (long long)acc);
  /* Bit operations. */
  unsigned pop = 0, lz = 0;
  for (unsigned i = 1; i < 100000; i += 7) { pop += __builtin_popcount(i * 2654435761u); lz += __builtin_clz(i); }
  printf("popcount %u clz %u bswap %08x\n", pop, lz, __builtin_bswap32(0x12345678u));
  /* CRC-32 and sort. */
  uint32_t *v = malloc(4096 * sizeof *v);
  uint32_t s = 12345;
  for (int i = 0; i < 4096; i++) { s = s * 1664525u + 1013904223u; v[i] = s; }
  printf("crc %08x\n", crc32((const uint8_t *)v, 4096 * sizeof *v));
  qsort(v, 4096, sizeof *v, cmp_u32);
  printf("sorted min %08x median %08x max %08x\n", v[0], v[2048], v[4095]);
  printf("signed div %d %d %d %d\n", -7 / 2, -7 % 2, 7 / -2, (int)(-2147483647 - 1) / 3);
  for (int i = 0; i < 5; i++) tls_counter += i;
  printf("tls %d\n", tls_counter);
  return primes % 256;
}
