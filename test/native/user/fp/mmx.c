/* MMX (mmintrin.h) integer SIMD on the mm registers, which alias the x87 register stack: after
 * _mm_empty (EMMS) the x87 unit must work normally again, which the long double arithmetic at the end
 * checks (it runs on the x87 in both builds). */
#include "common.h"
#include <mmintrin.h>

static void pm(const char *tag, __m64 v) { uint32_t w[2]; memcpy(w, &v, 8); printf("%s %08x%08x\n", tag, w[1], w[0]); }
static volatile uint32_t W[] = { 0x7f80ff01, 0x80017fff, 0x00ff8000, 0xfffe0002, 0x12345678, 0x9abcdef0, 0x7fff7fff, 0x80008000 };
static volatile long double three = 3.0L, seven = 7.0L;

int main(void) {
  for (int i = 0; i < 4; i++) {
    __m64 a = _mm_set_pi32((int)W[i], (int)W[(i + 1) & 7]), b = _mm_set_pi32((int)W[(i + 4) & 7], (int)W[(i + 3) & 7]);
    printf("-- %d\n", i);
    pm("paddsb", _mm_adds_pi8(a, b)); pm("paddusb", _mm_adds_pu8(a, b)); pm("paddsw", _mm_adds_pi16(a, b));
    pm("psubusb", _mm_subs_pu8(a, b)); pm("psubsw", _mm_subs_pi16(a, b)); pm("paddd", _mm_add_pi32(a, b));
    pm("pmaddwd", _mm_madd_pi16(a, b)); pm("pmullw", _mm_mullo_pi16(a, b)); pm("pmulhw", _mm_mulhi_pi16(a, b));
    pm("pcmpgtw", _mm_cmpgt_pi16(a, b)); pm("pcmpeqb", _mm_cmpeq_pi8(a, b));
    pm("packsswb", _mm_packs_pi16(a, b)); pm("packuswb", _mm_packs_pu16(a, b)); pm("packssdw", _mm_packs_pi32(a, b));
    pm("punpcklbw", _mm_unpacklo_pi8(a, b)); pm("punpckhwd", _mm_unpackhi_pi16(a, b)); pm("punpckldq", _mm_unpacklo_pi32(a, b));
    pm("psllw", _mm_slli_pi16(a, 4)); pm("psrld", _mm_srli_pi32(a, 7)); pm("psraw", _mm_srai_pi16(a, 9));
    pm("psllq", _mm_sll_si64(a, _mm_cvtsi32_si64(i * 20))); pm("psrlq", _mm_srli_si64(a, 33));
    pm("pand/pandn/por/pxor", _mm_xor_si64(_mm_or_si64(_mm_and_si64(a, b), _mm_andnot_si64(a, b)), a));
    printf("movd %08x\n", _mm_cvtsi64_si32(a));
    _mm_empty();
    /* x87 after EMMS: the tag word is empty again, so loads and arithmetic behave normally. */
    volatile long double q = three / seven + (long double)i;
    pld("x87", q);
  }
  return 0;
}
