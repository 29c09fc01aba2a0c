/* What the reachability scan calls each never-freed block at exit, one kind per site.
 * Blocks are made in helper functions, so no stale copy of a pointer stays in a live frame.
 *
 *   still reachable  1x100  @leak reachable     (a global points to it)
 *                    1x64   @leak chain-parent  (a global points to it)
 *                    1x72   @leak chain-child   (only the parent points to it)
 *   definitely lost  1x200  @leak lost          (its only pointer was overwritten)
 *                    1x32   @leak list-head     (a lost list's head)
 *   indirectly lost  3x48   @leak list-node     (the nodes of that list)
 *   possibly lost    1x300  @leak interior      (only a pointer into its middle is kept)
 * Output: "done". */
#include "trace_common.h"

struct node {
  struct node* next;
  char payload[40];
};

struct parent {
  void* child;
  char payload[56];
};

static void* reachable;
static struct parent* chain;
static char* middle;
static void* volatile sink;

static __attribute__((noinline)) void make_reachable(void) {
  reachable = malloc(100);  // @leak reachable
}

static __attribute__((noinline)) void make_chain(void) {
  chain = malloc(sizeof *chain);  // @leak chain-parent
  chain->child = malloc(72);      // @leak chain-child
}

static __attribute__((noinline)) void make_lost(void) {
  sink = malloc(200);  // @leak lost
  sink = NULL;
}

static __attribute__((noinline)) struct node* make_node(struct node* next) {
  struct node* n = malloc(sizeof *n);  // @leak list-node
  memset(n, 0, sizeof *n);
  n->next = next;
  return n;
}

static __attribute__((noinline)) void make_lost_list(void) {
  struct node* list = NULL;
  for (int i = 0; i < 3; i++) list = make_node(list);
  struct { struct node* first; char pad[24]; }* head = malloc(32);  // @leak list-head
  memset(head, 0, 32);
  head->first = list;
  sink = head;
  sink = NULL;
}

static __attribute__((noinline)) void make_interior(void) {
  char* p = malloc(300);  // @leak interior
  middle = p + 150;
}

int main(void) {
  make_reachable();
  make_chain();
  make_lost();
  make_lost_list();
  make_interior();
  say("done\n");
  return 0;
}
