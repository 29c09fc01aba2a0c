/* New tasks made every way a program can (modes in argv[1]); the tests compare the output
 * and exit status with a native run, and count the traced process's leaks exactly.
 *
 *   spawn    - leaks 1x16 (@leak pre-spawn), posix_spawn()s this program in mode
 *              "spawned" (says "spawned running", leaks 1x99 in its own image, exits 7),
 *              waits: "spawned exited 7"; leaks 1x32 (@leak post-spawn); exits 0.
 *   clone3   - a clone3 thread (CLONE_VM|CLONE_THREAD|..., its own stack, raw syscall):
 *              leaks 1x48 (@leak clone3-thread), mallocs and frees 1x64, ends with
 *              exit(2) of that thread alone; the main thread waits on the CLEARTID futex:
 *              "clone3 thread done".  Then a clone3 child process (flags 0, SIGCHLD):
 *              leaks 1x77 in its own copy and exits 5: "clone3 child exited 5".  Then
 *              leaks 1x24 (@leak post-clone3) and exits 0.
 *   execthread - leaks 1x31 (gone with the image), a second thread execs this program in
 *              mode "after": the kernel kills the main thread, and the exec'ing thread
 *              takes over the pid.  "after" leaks 2x40 (@leak after-exec), says
 *              "after exec pid PID" (the same pid as before: "before exec pid PID") and
 *              exits 3.
 *
 * Tasks are made with raw syscalls where glibc has no wrapper; the clone3 thread shares the
 * main thread's TLS (no CLONE_SETTLS), which is safe only because the main thread does
 * nothing but wait on the futex meanwhile. */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <linux/sched.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "trace_common.h"

extern char** environ;
static char self[PATH_MAX];
static void* volatile kept[8];

static void find_self(void) {
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) die("readlink");
  self[n] = '\0';
}

static int spawn_mode(void) {
  kept[0] = malloc(16);  // @leak pre-spawn
  pid_t pid;
  char* argv[] = {self, "spawned", NULL};
  int e = posix_spawn(&pid, self, NULL, NULL, argv, environ);
  if (e != 0) {
    errno = e;
    die("posix_spawn");
  }
  int status;
  if (waitpid(pid, &status, 0) != pid) die("waitpid");
  say("spawned exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  kept[1] = malloc(32);  // @leak post-spawn
  return 0;
}

/* clone3 returns twice; the child, on a fresh stack, must not return into C code that
 * expects the parent's frames: it calls |fn| and ends the thread right there. */
static long raw_clone3(struct clone_args* args, void (*fn)(void)) {
  long ret;
  register void (*f)(void) __asm__("r12") = fn;
  __asm__ volatile(
      "syscall\n\t"
      "test %%rax, %%rax\n\t"
      "jnz 1f\n\t"
      "xor %%ebp, %%ebp\n\t"
      "call *%%r12\n\t"
      "mov $60, %%eax\n\t" /* SYS_exit: this thread only */
      "xor %%edi, %%edi\n\t"
      "syscall\n\t"
      "hlt\n\t"
      "1:\n\t"
      : "=a"(ret)
      : "0"((long)SYS_clone3), "D"(args), "S"(sizeof *args), "r"(f)
      : "rcx", "r11", "memory");
  return ret;
}

static void clone3_thread_body(void) {
  char* p = malloc(64);
  p[0] = 1;
  free(p);
  kept[2] = malloc(48);  // @leak clone3-thread
}

static int clone3_mode(void) {
  size_t stack_size = 256 * 1024;
  char* stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (stack == MAP_FAILED) die("mmap");
  static volatile pid_t child_tid;
  struct clone_args a;
  memset(&a, 0, sizeof a);
  a.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |
            CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;
  a.parent_tid = (uint64_t)(uintptr_t)&child_tid;
  a.child_tid = (uint64_t)(uintptr_t)&child_tid;
  a.stack = (uint64_t)(uintptr_t)stack;
  a.stack_size = stack_size;
  long tid = raw_clone3(&a, clone3_thread_body);
  if (tid < 0) {
    errno = (int)-tid;
    die("clone3 thread");
  }
  /* The kernel zeroes child_tid and wakes us when the thread is gone. */
  for (pid_t seen; (seen = child_tid) != 0;)
    syscall(SYS_futex, &child_tid, FUTEX_WAIT, seen, NULL, NULL, 0);
  say("clone3 thread done\n");

  memset(&a, 0, sizeof a);
  a.exit_signal = SIGCHLD;
  long pid = syscall(SYS_clone3, &a, sizeof a);
  if (pid < 0) die("clone3 process");
  if (pid == 0) {
    kept[3] = malloc(77);  // @leak clone3-child
    _exit(5);
  }
  int status;
  if (waitpid((pid_t)pid, &status, 0) != pid) die("waitpid");
  say("clone3 child exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  kept[4] = malloc(24);  // @leak post-clone3
  return 0;
}

static void* exec_thread(void* arg) {
  (void)arg;
  execl(self, self, "after", (char*)NULL);
  die("execl");
  return NULL;
}

static int execthread_mode(void) {
  kept[0] = malloc(31);
  say("before exec pid %d\n", (int)getpid());
  pthread_t t;
  if (pthread_create(&t, NULL, exec_thread, NULL) != 0) die("pthread_create");
  for (;;) pause();  // killed by the other thread's exec
  return 1;
}

int main(int argc, char** argv) {
  find_self();
  const char* mode = argc > 1 ? argv[1] : "spawn";
  if (strcmp(mode, "spawn") == 0) return spawn_mode();
  if (strcmp(mode, "spawned") == 0) {
    kept[5] = malloc(99);  // @leak spawned
    say("spawned running\n");
    return 7;
  }
  if (strcmp(mode, "clone3") == 0) return clone3_mode();
  if (strcmp(mode, "execthread") == 0) return execthread_mode();
  if (strcmp(mode, "after") == 0) {
    for (int i = 0; i < 2; i++) kept[i] = malloc(40);  // @leak after-exec
    say("after exec pid %d\n", (int)getpid());
    return 3;
  }
  say("unknown mode %s\n", mode);
  return 2;
}
