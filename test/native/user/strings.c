/* stdio and string functions: printf formatting, sscanf, strtol, string.h, qsort of strings, and a
   line-oriented filter over stdin (upper-cases and numbers lines). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
  printf("argc=%d", argc);
  for (int i = 1; i < argc; i++) printf(" [%s]", argv[i]);
  printf("\n");
  printf("|%5d|%-5d|%05d|%+d|%x|%X|%#o|%c|%10.3s|%%|\n", 42, 42, 42, 42, 0xbeef, 0xbeef, 8, 'Z', "abcdef");
  printf("|%lld|%llu|%llx|%hhd|%hd|%zu|\n", -1234567890123ll, 18446744073709551615ull, 0xdeadbeefcafeull, (char)300, (short)70000, sizeof(long));
  char buf[128];
  int n = snprintf(buf, sizeof buf, "%s-%d-%s", "alpha", -5, "omega");
  printf("snprintf %d '%s' strlen %zu\n", n, buf, strlen(buf));
  int a, b; char word[32];
  if (sscanf("17 0x1f token", "%d %i %31s", &a, &b, word) == 3) printf("sscanf %d %d %s\n", a, b, word);
  printf("strtol %ld %ld %lu\n", strtol("-0777", NULL, 8), strtol("zz", NULL, 36), strtoul("4294967295", NULL, 10));
  const char *words[] = {"pear", "apple", "fig", "banana", "cherry", "date", "elderberry", "apple"};
  const char *sorted[8];
  memcpy(sorted, words, sizeof words);
  qsort(sorted, 8, sizeof *sorted, cmp_str);
  for (int i = 0; i < 8; i++) printf("%s%c", sorted[i], i == 7 ? '\n' : ',');
  printf("strstr %s strchr %s strrchr %s\n", strstr("haystack needle hay", "needle"), strchr("a.b.c", '.'), strrchr("a.b.c", '.'));
  char cat[64] = "con"; strcat(cat, "cat"); strncat(cat, "enation!!", 6);
  printf("%s %d %d\n", cat, strncmp("abc", "abd", 2), memcmp("abc", "abd", 3) < 0);
  /* stdin filter */
  char line[256];
  int ln = 0;
  while (fgets(line, sizeof line, stdin)) {
    for (char *p = line; *p; p++) *p = toupper((unsigned char)*p);
    printf("%3d: %s", ++ln, line);
  }
  fprintf(stderr, "stderr line %d\n", ln);
  return 0;
}
