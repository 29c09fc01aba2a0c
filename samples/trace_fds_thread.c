/* fds crossing threads.  argv[1]: a scratch directory.
 *   - thread "opener" opens DIR/shared.txt and exits; thread "closer" (started after the
 *     opener was joined) closes it: opened by one thread, closed by another, not a leak;
 *   - thread "leaker" opens DIR/leak.txt and leaks it (@fd thread-leak), prints
 *     "fd thread-leak N";
 *   - the main thread opens a pipe in which a worker closes both ends.
 * fd_opened 4 (shared, leak, pipe x2), fd_closed 3, 1 leaked.  Prints "done", exits 0. */
#include <fcntl.h>
#include <pthread.h>

#include "trace_common.h"

static char path_shared[512], path_leak[512];
static int shared_fd = -1;
static int pipe_fds[2];

static void* opener(void* arg) {
  (void)arg;
  shared_fd = open(path_shared, O_CREAT | O_RDWR, 0600);
  if (shared_fd < 0) die("open shared");
  return NULL;
}

static void* closer(void* arg) {
  (void)arg;
  if (close(shared_fd) != 0) die("close shared");
  return NULL;
}

static void* leaker(void* arg) {
  (void)arg;
  int fd = open(path_leak, O_CREAT | O_RDWR, 0600);  // @fd thread-leak
  if (fd < 0) die("open leak");
  say("fd thread-leak %d\n", fd);
  return NULL;
}

static void* pipe_closer(void* arg) {
  (void)arg;
  if (close(pipe_fds[0]) != 0 || close(pipe_fds[1]) != 0) die("close pipe");
  return NULL;
}

static void run(void* (*fn)(void*)) {
  pthread_t t;
  if (pthread_create(&t, NULL, fn, NULL) != 0) die("pthread_create");
  pthread_join(t, NULL);
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  snprintf(path_shared, sizeof path_shared, "%s/shared.txt", argv[1]);
  snprintf(path_leak, sizeof path_leak, "%s/leak.txt", argv[1]);
  run(opener);
  run(closer);
  run(leaker);
  if (pipe(pipe_fds) != 0) die("pipe");
  run(pipe_closer);
  say("done\n");
  return 0;
}
