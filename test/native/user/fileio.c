/* File I/O through the syscall layer: open/creat, write, lseek, pread, stat, rename, directories
   (mkdir, getdents via readdir, chdir/getcwd), unlink. argv[1] is a scratch directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  if (chdir(argv[1]) != 0) { perror("chdir"); return 1; }
  char cwd[4096];
  printf("getcwd ok: %d\n", getcwd(cwd, sizeof cwd) != NULL && strcmp(cwd, argv[1]) == 0);
  int fd = open("data.bin", O_CREAT | O_TRUNC | O_RDWR, 0644);
  for (int i = 0; i < 1000; i++) { char b[16]; int n = sprintf(b, "%d\n", i * i); write(fd, b, n); }
  off_t end = lseek(fd, 0, SEEK_END);
  printf("size after writes %ld\n", (long)end);
  lseek(fd, 100, SEEK_SET);
  char buf[32] = {0};
  read(fd, buf, 20);
  printf("at 100: '%.20s' pos %ld\n", buf, (long)lseek(fd, 0, SEEK_CUR));
  memset(buf, 0, sizeof buf);
  pread(fd, buf, 10, 5);
  printf("pread: '%.10s' pos still %ld\n", buf, (long)lseek(fd, 0, SEEK_CUR));
  struct stat st;
  fstat(fd, &st);
  printf("fstat size %ld regular %d mode %o\n", (long)st.st_size, S_ISREG(st.st_mode), st.st_mode & 0777);
  close(fd);
  FILE *f = fopen("data.bin", "r");
  long sum = 0, v;
  while (fscanf(f, "%ld", &v) == 1) sum += v;
  fclose(f);
  printf("sum of squares %ld\n", sum);
  f = fopen("data.bin", "a");
  fputs("appended\n", f);
  fclose(f);
  stat("data.bin", &st);
  printf("after append %ld\n", (long)st.st_size);
  printf("rename %d\n", rename("data.bin", "moved.bin"));
  printf("stat old: %d errno %s\n", stat("data.bin", &st), errno == ENOENT ? "ENOENT" : "other");
  printf("open missing: %d errno %s\n", open("nope/x", O_RDONLY), errno == ENOENT ? "ENOENT" : "other");
  printf("mkdir %d\n", mkdir("sub", 0755));
  printf("mkdir again %d errno %s\n", mkdir("sub", 0755), errno == EEXIST ? "EEXIST" : "other");
  for (int i = 0; i < 5; i++) { char name[64]; sprintf(name, "sub/file%d.txt", i); FILE *g = fopen(name, "w"); fprintf(g, "%d", i); fclose(g); }
  DIR *d = opendir("sub");
  char *names[16]; int count = 0;
  struct dirent *e;
  while ((e = readdir(d)) && count < 16) names[count++] = strdup(e->d_name);
  closedir(d);
  qsort(names, count, sizeof *names, cmp_str);
  printf("dir:");
  for (int i = 0; i < count; i++) printf(" %s", names[i]);
  printf("\n");
  printf("access %d %d\n", access("moved.bin", R_OK), access("missing", F_OK));
  int dfd = dup(1);
  dprintf(dfd, "via dup %d\n", dfd);
  close(dfd);
  for (int i = 0; i < 5; i++) { char name[64]; sprintf(name, "sub/file%d.txt", i); unlink(name); }
  printf("rmdir %d unlink %d\n", rmdir("sub"), unlink("moved.bin"));
  return 0;
}
