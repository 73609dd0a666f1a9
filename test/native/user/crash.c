/* Fatal faults: argv[1] selects a NULL dereference (SIGSEGV), an integer division by zero (SIGFPE),
   an undefined opcode (SIGILL) or abort() (SIGABRT); "nosys" calls a syscall number Linux doesn't have. */
#include <errno.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  volatile int zero = 0;
  volatile int *volatile null = 0;
  printf("before\n");
  fflush(stdout);
  if (argc < 2) return 0;
  if (!strcmp(argv[1], "segv")) return *null;
  if (!strcmp(argv[1], "fpe")) return 10 / zero;
  if (!strcmp(argv[1], "ill")) __asm__ volatile("ud2");
  if (!strcmp(argv[1], "abort")) abort();
  if (!strcmp(argv[1], "nosys")) { long r = syscall(999); printf("%ld %s\n", r, errno == ENOSYS ? "ENOSYS" : "other"); return 0; }
  return 1;
}
