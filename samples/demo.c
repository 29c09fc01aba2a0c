/* The README's demo: a tiny "server" that leaks a little memory per request and forgets to
 * close one log file.  `make demo` runs it under `ptmem launch`. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct request {
  char* body;
  size_t size;
};

static struct request* parse_request(int n) {
  struct request* r = malloc(sizeof *r);
  r->size = 32 + (size_t)n;
  r->body = malloc(r->size); /* leaked for every third request below */
  memset(r->body, 'x', r->size);
  return r;
}

static void handle(int n) {
  struct request* r = parse_request(n);
  if (n % 3 != 0) free(r->body); /* bug: the body of every third request is never freed */
  free(r);
}

int main(void) {
  int log = open("/tmp/ptmem-demo.log", O_WRONLY | O_CREAT | O_APPEND, 0644); /* never closed */
  for (int i = 0; i < 9; i++) handle(i);
  if (log >= 0) (void)!write(log, "done\n", 5);
  return 0;
}
