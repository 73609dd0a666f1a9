/* Allocator stress: many small blocks (brk heap), large blocks (mmap'ed by glibc above its threshold),
   realloc growth (mremap) and frees, with a checksum over the contents. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

int main(void) {
  enum { N = 4000 };
  static unsigned char *blocks[N];
  static size_t sizes[N];
  uint32_t seed = 1, sum = 0;
  for (int round = 0; round < 4; round++) {
    for (int i = 0; i < N; i++) {
      seed = seed * 1103515245u + 12345u;
      size_t sz = (seed >> 8) % 2000 + 1;
      if (blocks[i] && (seed & 0x300) == 0) { free(blocks[i]); blocks[i] = NULL; }
      else if (blocks[i]) {
        blocks[i] = realloc(blocks[i], sz);
        if (sz > sizes[i]) memset(blocks[i] + sizes[i], (int)(sz & 0xff), sz - sizes[i]);
        sizes[i] = sz;
      } else {
        blocks[i] = malloc(sz);
        memset(blocks[i], i & 0xff, sz);
        sizes[i] = sz;
      }
    }
  }
  for (int i = 0; i < N; i++) if (blocks[i]) for (size_t k = 0; k < sizes[i]; k++) sum = sum * 31 + blocks[i][k];
  printf("small blocks checksum %08x\n", sum);
  /* Big blocks: mmap, realloc (mremap), calloc zeroing. */
  size_t big = 1 << 16;
  unsigned char *p = malloc(big);
  for (size_t i = 0; i < big; i++) p[i] = (unsigned char)(i * 7);
  for (int k = 0; k < 4; k++) {
    big *= 2;
    p = realloc(p, big);
    for (size_t i = big / 2; i < big; i++) p[i] = (unsigned char)(i * 13 + k);
  }
  uint32_t bs = 0;
  for (size_t i = 0; i < big; i += 4093) bs = bs * 33 + p[i];
  printf("big block %zu checksum %08x\n", big, bs);
  free(p);
  unsigned *z = calloc(3 << 18, sizeof *z);
  unsigned zs = 0;
  for (size_t i = 0; i < (3u << 18); i++) zs |= z[i];
  printf("calloc zero %u\n", zs);
  free(z);
  for (int i = 0; i < N; i++) free(blocks[i]);
  /* Reuse after free must still give usable memory. */
  char *again = malloc(5 << 20);
  memset(again, 'x', 5 << 20);
  printf("reuse %c%c\n", again[0], again[(5 << 20) - 1]);
  free(again);
  return 0;
}
