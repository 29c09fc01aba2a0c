/* The gauntlet's target: a storm of 64 threads (or argv[1]) making every kind of call ptmem
 * traces, each checking its own results, so that anything ptmem disturbs shows up as a
 * wrong checksum, a changed descriptor or a crash.  Driven on stdin like
 * trace_attach_target.c (same "ready", "sum", "check", "pause", "resume", "quit"), plus:
 *
 *   audit -> "audit ok fds=N"       every worker idle; the open descriptors are exactly
 *            or "audit bad WHAT"    those of the start (same numbers, same files), so no
 *                                   descriptor was leaked, closed or renumbered
 *
 * Each worker round: malloc/realloc/calloc/free with data checksums (as trace_attach_target),
 * then open+pread+close of a data file with known contents, a pipe written and read back,
 * dup of a long-lived descriptor, posix_memalign and strdup/free.  "check" counts rounds and
 * corrupted results; any mismatch makes bad > 0.  A stray int3 or a wrong return address
 * kills the process, which the driver sees. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>

#include "trace_common.h"

#define MAX_WORKERS 64
#define LONG_LIVED 8
#define DATA_SIZE 65536

static int WORKERS = 64;
static atomic_long rounds;
static atomic_long bad;
static atomic_int stop_all;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int paused;      /* guarded by lock */
static int idle_count;  /* workers waiting while paused */

static char data_path[256];
static int long_lived[LONG_LIVED];

/* The data file's byte at offset i. */
static unsigned char data_byte(size_t i) { return (unsigned char)(i * 131u + (i >> 8) * 7u + 1u); }

struct fd_id {
  int fd;
  dev_t dev;
  ino_t ino;
};
static struct fd_id baseline[256];
static int baseline_count;

/* The process's open descriptors, in /proc/self/fd order (the reading's own fd excluded). */
static int list_fds(struct fd_id* out, int max) {
  DIR* d = opendir("/proc/self/fd");
  if (!d) die("opendir /proc/self/fd");
  int n = 0, self = dirfd(d);
  struct dirent* e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    int fd = atoi(e->d_name);
    if (fd == self) continue;
    struct stat st;
    if (fstat(fd, &st) != 0 || n >= max) continue;
    out[n].fd = fd;
    out[n].dev = st.st_dev;
    out[n].ino = st.st_ino;
    n++;
  }
  closedir(d);
  return n;
}

static void mark_bad(void) { atomic_fetch_add(&bad, 1); }

static void memory_round(long id, long r) {
  size_t n = 32 + (size_t)((r * 7 + id) % 200);
  uint32_t* a = malloc(n * sizeof *a);
  if (!a) return mark_bad();
  for (size_t i = 0; i < n; i++) a[i] = (uint32_t)(i * 2654435761u + (uint32_t)id);
  uint32_t* b = realloc(a, 2 * n * sizeof *b);
  if (!b) return mark_bad();
  for (size_t i = n; i < 2 * n; i++) b[i] = (uint32_t)i;
  uint32_t* c = calloc(n, sizeof *c);
  if (!c) return mark_bad();
  for (size_t i = 0; i < n; i++) c[i] = b[i] ^ b[n + i];
  for (size_t i = 0; i < n; i++)
    if ((c[i] ^ (uint32_t)(n + i)) != (uint32_t)(i * 2654435761u + (uint32_t)id)) {
      mark_bad();
      break;
    }
  free(c);
  free(b);
  void* aligned = NULL;
  if (posix_memalign(&aligned, 64, 200 + (size_t)(r % 64)) != 0 || ((uintptr_t)aligned & 63) != 0) return mark_bad();
  memset(aligned, (int)id, 200);
  free(aligned);
  char name[32];
  snprintf(name, sizeof name, "w%ld-r%ld", id, r);
  char* s = strdup(name);
  if (!s || strcmp(s, name) != 0) mark_bad();
  free(s);
}

static void fd_round(long id, long r) {
  int fd = open(data_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return mark_bad();
  unsigned char buf[256];
  size_t off = (size_t)((r * 977 + id * 131) % (DATA_SIZE - sizeof buf));
  ssize_t got = pread(fd, buf, sizeof buf, (off_t)off);
  if (got != (ssize_t)sizeof buf) mark_bad();
  else
    for (size_t i = 0; i < sizeof buf; i++)
      if (buf[i] != data_byte(off + i)) {
        mark_bad();
        break;
      }
  if (close(fd) != 0) mark_bad();

  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return mark_bad();
  long word = id * 1000003 + r, back = 0;
  if (write(p[1], &word, sizeof word) != sizeof word || read(p[0], &back, sizeof back) != sizeof back || back != word)
    mark_bad();
  if (close(p[0]) != 0 || close(p[1]) != 0) mark_bad();

  int d = dup(long_lived[id % LONG_LIVED]);
  if (d < 0) return mark_bad();
  struct stat a, b;
  if (fstat(d, &a) != 0 || fstat(long_lived[id % LONG_LIVED], &b) != 0 || a.st_ino != b.st_ino) mark_bad();
  if (close(d) != 0) mark_bad();
}

static void* worker(void* arg) {
  long id = (long)arg;
  for (long r = 0; !atomic_load(&stop_all); r++) {
    pthread_mutex_lock(&lock);
    if (paused) {
      idle_count++;
      pthread_cond_broadcast(&cond);
      while (paused && !atomic_load(&stop_all)) pthread_cond_wait(&cond, &lock);
      idle_count--;
    }
    pthread_mutex_unlock(&lock);
    memory_round(id, r);
    fd_round(id, r);
    atomic_fetch_add(&rounds, 1);
  }
  return NULL;
}

static void pause_workers(void) {
  pthread_mutex_lock(&lock);
  paused = 1;
  while (idle_count < WORKERS) pthread_cond_wait(&cond, &lock);
  pthread_mutex_unlock(&lock);
}

static void resume_workers(void) {
  pthread_mutex_lock(&lock);
  paused = 0;
  pthread_cond_broadcast(&cond);
  pthread_mutex_unlock(&lock);
}

static void audit(void) {
  struct fd_id now[256];
  pause_workers();
  int n = list_fds(now, 256);
  resume_workers();
  if (n != baseline_count) {
    say("audit bad fds=%d expected=%d\n", n, baseline_count);
    return;
  }
  for (int i = 0; i < n; i++)
    if (now[i].fd != baseline[i].fd || now[i].dev != baseline[i].dev || now[i].ino != baseline[i].ino) {
      say("audit bad fd %d is not what it was\n", baseline[i].fd);
      return;
    }
  say("audit ok fds=%d\n", n);
}

static unsigned long sum_squares(long n) {
  unsigned long* v = malloc((size_t)n * sizeof *v + 1);
  unsigned long s = 0;
  for (long i = 0; i < n; i++) v[i] = (unsigned long)i * (unsigned long)i % 1000003ul;
  for (long i = 0; i < n; i++) s += v[i];
  free(v);
  return s;
}

static void make_data_file(void) {
  const char* dir = getenv("TMPDIR");
  snprintf(data_path, sizeof data_path, "%s/gauntlet-%d.data", dir && *dir ? dir : "/tmp", (int)getpid());
  int fd = open(data_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) die("create data file");
  static unsigned char data[DATA_SIZE];
  for (size_t i = 0; i < DATA_SIZE; i++) data[i] = data_byte(i);
  if (write(fd, data, DATA_SIZE) != DATA_SIZE) die("write data file");
  close(fd);
}

int main(int argc, char** argv) {
  if (argc > 1) WORKERS = atoi(argv[1]);
  if (WORKERS < 1 || WORKERS > MAX_WORKERS) die("workers: 1 to 64");
  make_data_file();
  /* Long-lived descriptors of several kinds, some at high numbers: they must keep their
   * numbers and files through every attach and detach. */
  for (int i = 0; i < LONG_LIVED; i++) {
    int fd = i % 2 ? open("/dev/null", O_RDONLY) : open(data_path, O_RDONLY);
    if (fd < 0) die("open long-lived");
    long_lived[i] = fcntl(fd, F_DUPFD, 100 + 10 * i);
    close(fd);
  }
  baseline_count = list_fds(baseline, 256);

  pthread_t threads[MAX_WORKERS];
  for (long i = 0; i < WORKERS; i++)
    if (pthread_create(&threads[i], NULL, worker, (void*)i) != 0) die("pthread_create");
  say("ready %d\n", (int)getpid());

  char line[256];
  while (read_line(line, sizeof line)) {
    long n = 0;
    if (sscanf(line, "sum %ld", &n) == 1 && n > 0) {
      say("sum %ld %lu\n", n, sum_squares(n));
    } else if (strcmp(line, "check") == 0) {
      say("check bad=%ld rounds=%ld\n", atomic_load(&bad), atomic_load(&rounds));
    } else if (strcmp(line, "audit") == 0) {
      audit();
    } else if (strcmp(line, "pause") == 0) {
      pause_workers();
      say("paused\n");
    } else if (strcmp(line, "resume") == 0) {
      resume_workers();
      say("resumed\n");
    } else if (strcmp(line, "quit") == 0) {
      break;
    } else {
      say("unknown command '%s'\n", line);
    }
  }
  atomic_store(&stop_all, 1);
  resume_workers();
  for (int i = 0; i < WORKERS; i++) pthread_join(threads[i], NULL);
  unlink(data_path);
  return 0;
}
