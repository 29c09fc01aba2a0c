/* Shared by the trace_* samples (tracer end-to-end tests).
 *
 * Output goes straight to write(2): stdio would malloc a buffer for stdout on the first
 * printf and never free it, an extra "leak" in libc's name that every test would have to
 * know about.  snprintf into a stack buffer allocates nothing for these formats.
 *
 * Leak sites are marked in the sources with comments the tests scan for, never by line
 * number:  "// @leak NAME" (memory), "// @fd NAME" (file descriptor), "// @frame NAME"
 * (a caller line expected further down a stack). */
#ifndef PTMEM_SAMPLES_TRACE_COMMON_H
#define PTMEM_SAMPLES_TRACE_COMMON_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline void say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void say(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof buf) n = sizeof buf - 1;
  size_t off = 0;
  while (off < (size_t)n) {
    ssize_t w = write(1, buf + off, (size_t)n - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    off += (size_t)w;
  }
}

static inline void die(const char* what) {
  say("FAILED %s: %s\n", what, strerror(errno));
  _exit(99);
}

/* Reads one '\n'-terminated line from stdin with read(2) (no stdio buffer); returns 0 on
 * EOF.  Retries after EINTR so a signal handler running meanwhile is harmless. */
static inline int read_line(char* buf, size_t size) {
  size_t n = 0;
  while (n + 1 < size) {
    char c;
    ssize_t r = read(0, &c, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return n > 0;
    if (c == '\n') break;
    buf[n++] = c;
  }
  buf[n] = '\0';
  return 1;
}

#endif
