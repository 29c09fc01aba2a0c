/* ptmem's in-process agent: freestanding, position-independent, no libc.  ptmem maps it
 * into the target next to a shared control region, points the entries of the traced
 * functions at it (through per-function stubs that load the hook index into r11), and
 * drains the records it writes.  The hot path: find this thread's slot, write one entry
 * record into its own ring (no shared atomics), redirect the return address when the
 * result is wanted, and go on into the relocated prologue of the real function.
 *
 * Harmless by construction: every failure (no slot, nested call, ring full with ptmem
 * gone) passes the call straight through; the return path always goes back to the real
 * return address, recording or not. */
#include <stddef.h>
#include <stdint.h>

#include "ptmem/inject/agent_abi.h"

#define HIDDEN __attribute__((visibility("hidden")))
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define BARRIER() __asm__ __volatile__("" ::: "memory")

/* The frame the entry stub builds (lowest address first). */
struct entry_frame {
  uint64_t align, r15, r14, r13, r12, rbp, rbx;
  uint64_t r9, r8, rcx, rdx, rsi, rdi, rax;
  uint64_t ret; /* the caller's return address: its address is rsp at the function entry */
};
struct return_frame {
  uint64_t align, rdx, rax;
  uint64_t real_ret; /* filled here: the stub returns through it */
};

uint64_t agent_on_entry(struct entry_frame* f, uint64_t hook) HIDDEN;
uint64_t agent_on_return(struct return_frame* f) HIDDEN;
void* memcpy(void* d, const void* s, size_t n) HIDDEN;
void* memset(void* d, int c, size_t n) HIDDEN;

extern const struct ptmem_agent_header ptmem_agent_header HIDDEN;
extern char ptmem_agent_entry[] HIDDEN, ptmem_agent_return[] HIDDEN;
extern char ptmem_agent_end[] HIDDEN;

/* The header, in assembly because C cannot fold addresses into 32-bit constants.  The
 * image is linked at address 0 (src/agent/agent.ld), so these addresses are offsets. */
__asm__(
    ".section .agent_header, \"a\"\n"
    ".globl ptmem_agent_header\n.hidden ptmem_agent_header\n"
    ".balign 8\n"
    "ptmem_agent_header:\n"
    "  .quad 0x746e656761746d70\n"  /* PTMEM_AGENT_MAGIC */
    "  .long 1\n"                   /* PTMEM_AGENT_VERSION */
    "  .long ptmem_agent_end\n"
    "  .quad 0\n"                   /* control: written by ptmem */
    "  .long ptmem_agent_entry\n"
    "  .long ptmem_agent_return\n"
    "  .long ptmem_agent_entry_exit\n"
    "  .long ptmem_agent_return_exit\n"
    ".text\n");
_Static_assert(PTMEM_AGENT_MAGIC == 0x746e656761746d70ull && PTMEM_AGENT_VERSION == 1u, "header above");
_Static_assert(sizeof(struct ptmem_agent_header) == 40, "header above");

/* The only two ways out of the agent's code are the jmp at ptmem_agent_entry_exit and the
 * ret at ptmem_agent_return_exit: at detach ptmem puts int3s there and lets the threads
 * inside run out to them. */
/* Entry: r11 = hook index.  Saves the argument registers (and rax: al counts vector
 * registers of a variadic call such as open), the callee-saved ones for the unwinder,
 * calls agent_on_entry, restores, and jumps where it said (the relocated prologue). */
__asm__(
    ".text\n"
    ".globl ptmem_agent_entry\n.hidden ptmem_agent_entry\n"
    "ptmem_agent_entry:\n"
    "  push %rax\n  push %rdi\n  push %rsi\n  push %rdx\n  push %rcx\n  push %r8\n  push %r9\n"
    "  push %rbx\n  push %rbp\n  push %r12\n  push %r13\n  push %r14\n  push %r15\n"
    "  sub $8, %rsp\n"
    "  mov %rsp, %rdi\n  mov %r11, %rsi\n"
    "  cld\n"
    "  call agent_on_entry\n"
    "  mov %rax, %r11\n"
    "  add $8, %rsp\n"
    "  pop %r15\n  pop %r14\n  pop %r13\n  pop %r12\n  pop %rbp\n  pop %rbx\n"
    "  pop %r9\n  pop %r8\n  pop %rcx\n  pop %rdx\n  pop %rsi\n  pop %rdi\n  pop %rax\n"
    ".globl ptmem_agent_entry_exit\n.hidden ptmem_agent_entry_exit\n"
    "ptmem_agent_entry_exit:\n"
    "  jmp *%r11\n"
    /* Return: the real function's `ret` lands here with rsp = its entry rsp + 8. */
    ".globl ptmem_agent_return\n.hidden ptmem_agent_return\n"
    "ptmem_agent_return:\n"
    "  sub $8, %rsp\n  push %rax\n  push %rdx\n  sub $8, %rsp\n"
    "  mov %rsp, %rdi\n"
    "  cld\n"
    "  call agent_on_return\n"
    "  mov %rax, 24(%rsp)\n"
    "  add $8, %rsp\n  pop %rdx\n  pop %rax\n"
    ".globl ptmem_agent_return_exit\n.hidden ptmem_agent_return_exit\n"
    "ptmem_agent_return_exit:\n"
    "  ret\n");

void* memcpy(void* d, const void* s, size_t n) {
  void* ret = d;
  __asm__ __volatile__("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
  return ret;
}
void* memset(void* d, int c, size_t n) {
  void* ret = d;
  __asm__ __volatile__("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
  return ret;
}

static inline uint64_t rdtsc(void) {
  uint32_t lo, hi;
  __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64_t)hi << 32) | lo;
}

static inline long sys0(long nr) {
  long r;
  __asm__ __volatile__("syscall" : "=a"(r) : "a"(nr) : "rcx", "r11", "memory");
  return r;
}
static inline long sys2(long nr, long a, long b) {
  long r;
  __asm__ __volatile__("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b) : "rcx", "r11", "memory");
  return r;
}
static inline long sys6(long nr, long a, long b, long c, long d, long e, long f) {
  long r;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ __volatile__("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                       : "rcx", "r11", "memory");
  return r;
}
static inline long sys3(long nr, long a, long b, long c) {
  long r;
  __asm__ __volatile__("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return r;
}
#define SYS_read 0
#define SYS_open 2
#define SYS_close 3
#define O_RDONLY_CLOEXEC 02000000
static inline long sys4(long nr, long a, long b, long c, long d) {
  long r;
  register long r10 __asm__("r10") = d;
  __asm__ __volatile__("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
  return r;
}
#define SYS_rt_sigprocmask 14
#define SYS_rt_tgsigqueueinfo 297
#define SYS_sched_yield 24
#define SYS_process_vm_readv 310
#define SYS_kill 62
#define SYS_gettid 186
#define ESRCH 3

static inline struct ptmem_control* control(void) {
  return (struct ptmem_control*)(uintptr_t)ptmem_agent_header.control;
}
static inline struct ptmem_thread* threads(struct ptmem_control* c) {
  return (struct ptmem_thread*)((char*)c + c->threads_offset);
}
static inline char* ring_of(struct ptmem_control* c, uint32_t index) {
  return (char*)c + c->rings_offset + (uint64_t)index * c->ring_bytes;
}

static inline uint64_t tcb(void) {
  uint64_t v;
  __asm__("mov %%fs:0, %0" : "=r"(v));
  return v;
}

/* This thread's slot: claimed with one compare-and-swap at its first call.  A TCB that
 * glibc reuses for a new thread is a new thread: its tid differs. */
static struct ptmem_thread* my_thread(struct ptmem_control* c, uint32_t* index) {
  uint64_t key = tcb();
  if (UNLIKELY(key == 0)) return NULL;
  struct ptmem_thread* all = threads(c);
  uint32_t h = ptmem_thread_hash(key);
  for (uint32_t probe = 0; probe < PTMEM_MAX_THREADS; ++probe) {
    uint32_t i = (h + probe) & (PTMEM_MAX_THREADS - 1);
    struct ptmem_thread* t = &all[i];
    uint64_t k = __atomic_load_n(&t->key, __ATOMIC_ACQUIRE);
    if (k == 0) {
      uint64_t expected = 0;
      if (!__atomic_compare_exchange_n(&t->key, &expected, key, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        if (expected != key) continue;
      } else {
        t->tid = 0;
      }
      k = key;
    }
    if (k != key) continue;
    *index = i;
    int32_t tid = c->tid_offset ? *(volatile int32_t*)(key + c->tid_offset)
                  : t->tid ? t->tid : (int32_t)sys0(SYS_gettid);
    if (UNLIKELY(t->tid != tid)) {
      /* First call of this thread on this TCB: its predecessor's calls are dead. */
      t->tid = tid;
      t->depth = 0;
      t->stack_hi = tid == c->pid ? c->main_stack_hi : key;
    }
    return t;
  }
  return NULL;
}

/* ptmem beats every 100 ms from a thread of its own, whatever else it does; when the beat
 * stops, it is stopped (job control, a debugger: wait) or gone (killed, even unreaped). */
static int host_gone(const struct ptmem_control* c) {
  if (sys2(SYS_kill, c->host_pid, 0) == -ESRCH) return 1;
  long fd = sys3(SYS_open, (long)c->host_stat, O_RDONLY_CLOEXEC, 0);
  if (fd < 0) return 1;
  char buf[512];
  long n = sys3(SYS_read, fd, (long)buf, sizeof buf);
  sys2(SYS_close, fd, 0);
  long paren = -1;
  for (long i = 0; i < n; ++i)
    if (buf[i] == ')') paren = i;
  if (paren < 0 || paren + 2 >= n) return 0;
  return buf[paren + 2] == 'Z' || buf[paren + 2] == 'X';
}

/* Room for |size| bytes, contiguous.  Waits for ptmem while the ring is full.  A stale
 * heartbeat alone proves nothing (ptmem may be busy stepping a thread or scanning); a
 * stale heartbeat and no ptmem process mean it is gone: recording stops for good. */
static char* reserve(struct ptmem_control* c, struct ptmem_thread* t, uint32_t index, uint32_t size) {
  const uint64_t mask = c->ring_bytes - 1;
  char* ring = ring_of(c, index);
  for (;;) {
    uint64_t head = t->head;
    uint64_t tail = __atomic_load_n(&t->tail, __ATOMIC_ACQUIRE);
    uint64_t off = head & mask;
    uint64_t need = size;
    if (off + size > c->ring_bytes) need += c->ring_bytes - off; /* pad to the end first */
    if (head + need - tail <= c->ring_bytes) {
      if (need != size) {
        struct ptmem_record* pad = (struct ptmem_record*)(ring + off);
        pad->type = PTMEM_REC_PAD;
        pad->size = (uint32_t)(c->ring_bytes - off);
        head += c->ring_bytes - off;
        __atomic_store_n(&t->head, head, __ATOMIC_RELEASE);
      }
      return ring + (head & mask);
    }
    if (!c->enabled || c->host_gone) return NULL;
    if (rdtsc() - c->heartbeat > c->stale_ticks) {
      if (host_gone(c)) {
        c->host_gone = 1;
        c->enabled = 0;
        return NULL;
      }
      c->heartbeat = rdtsc();  /* alive (stopped): ask again after another stale period */
    }
    sys0(SYS_sched_yield);
  }
}

static inline void publish(struct ptmem_thread* t, uint32_t size) {
  __atomic_store_n(&t->head, t->head + size, __ATOMIC_RELEASE);
}

static inline int readable(uint64_t addr) { return addr >= 4096 && addr < (1ull << 47); }

/* Copies what the decoders need into the record; returns the bytes used. */
static uint32_t capture(struct ptmem_record* r, uint8_t what, const uint64_t* args, uint64_t result,
                        int at_return) {
  uint64_t addr[2] = {0, 0};
  uint32_t len[2] = {0, 0};
  switch (what) {
    case PTMEM_CAP_ENTRY_FILE_A0: if (!at_return) { addr[0] = args[0] + PTMEM_FILE_FILENO; len[0] = 4; } break;
    case PTMEM_CAP_FREOPEN:
      if (!at_return && args[2]) { addr[0] = args[2] + PTMEM_FILE_FILENO; len[0] = 4; }
      if (at_return && result) { addr[0] = result + PTMEM_FILE_FILENO; len[0] = 4; }
      break;
    case PTMEM_CAP_ENTRY_DIR_A0: if (!at_return) { addr[0] = args[0]; len[0] = 4; } break;
    case PTMEM_CAP_RET_A0_8: if (at_return && result == 0) { addr[0] = args[0]; len[0] = 8; } break;
    case PTMEM_CAP_RET_A3_8: if (at_return && result == 0) { addr[0] = args[3]; len[0] = 8; } break;
    case PTMEM_CAP_RET_FILE: if (at_return && result) { addr[0] = result + PTMEM_FILE_FILENO; len[0] = 4; } break;
    case PTMEM_CAP_RET_DIR: if (at_return && result) { addr[0] = result; len[0] = 4; } break;
    case PTMEM_CAP_RET_MSGHDR:
      if (at_return && (int64_t)result >= 0 && readable(args[1])) {
        addr[0] = args[1];
        len[0] = 56; /* struct msghdr */
        uint64_t control = *(const uint64_t*)(args[1] + 32), clen = *(const uint64_t*)(args[1] + 40);
        if (readable(control) && clen >= 16) {
          addr[1] = control;
          len[1] = clen > PTMEM_MAX_CAPTURE - 56 ? PTMEM_MAX_CAPTURE - 56 : (uint32_t)clen;
        }
      }
      break;
    default: break;
  }
  uint32_t used = 0;
  uint8_t* out = (uint8_t*)(r + 1);
  for (int i = 0; i < 2; ++i) {
    r->cap_addr[i] = 0;
    r->cap_len[i] = 0;
    if (!len[i] || !readable(addr[i])) continue;
    memcpy(out + used, (const void*)addr[i], len[i]);
    r->cap_addr[i] = addr[i];
    r->cap_len[i] = (uint16_t)len[i];
    used += len[i];
  }
  return used;
}

static inline uint32_t round8(uint32_t n) { return (n + 7u) & ~7u; }

/* Copies up to |len| bytes of this process's memory at |src| without faulting where it
 * is not mapped (a handler's sigaltstack near its end): the kernel stops at the hole. */
struct iov { uint64_t base, len; };
static uint32_t copy_safely(void* dst, uint64_t src, uint32_t len, int32_t pid) {
  struct iov local = {(uint64_t)(uintptr_t)dst, len}, remote = {src, len};
  long n = sys6(SYS_process_vm_readv, pid, (long)&local, 1, (long)&remote, 1, 0);
  return n > 0 ? (uint32_t)n : 0;
}

static const struct ptmem_rule* rule_of(const struct ptmem_control* c, uint64_t key) {
  const struct ptmem_rule* rules = (const struct ptmem_rule*)((const char*)c + c->rules_offset);
  uint32_t i = ptmem_rule_hash(key, c->rules_mask);
  for (uint32_t probe = 0; probe < PTMEM_RULE_PROBES; ++probe, i = (i + 1) & c->rules_mask) {
    uint64_t k = __atomic_load_n(&rules[i].key, __ATOMIC_ACQUIRE);
    if (k == key) return &rules[i];
    if (k == 0) return NULL;
  }
  return NULL;
}

static inline int stack_word(uint64_t addr, uint64_t lo, uint64_t hi, uint64_t* out) {
  if (addr < lo || addr + 8 > hi) return 0;
  *out = *(const volatile uint64_t*)(uintptr_t)addr;
  return 1;
}

/* The stack from the function's entry, walked with the rules ptmem published (the steps
 * its unwinder takes, symbols::CompactRule).  Returns the pcs written, or 0 when some frame
 * needs ptmem: no rule for its pc, or a read that would leave [sp, stack top). */
static uint32_t walk(const struct ptmem_control* c, const struct ptmem_thread* t, uint64_t pc, uint64_t sp,
                     uint64_t rbp, uint64_t* out) {
  const uint64_t lo = sp, hi = t->stack_hi;
  if (!c->rules_on || hi <= lo || hi - lo > (1ull << 30)) return 0;
  const uint32_t max = c->max_frames;
  uint32_t n = 0;
  int rbp_known = 1;
  uint64_t key = pc;
  out[n++] = pc;
  while (n < max) {
    const struct ptmem_rule* r = rule_of(c, key);
    if (!r) return 0;
    if (r->flags & PTMEM_RULE_END) break;
    uint64_t base;
    if (r->cfa_reg == 7) base = sp;
    else if (r->cfa_reg == 6 && rbp_known) base = rbp;
    else return 0;
    const uint64_t cfa = base + (uint64_t)(int64_t)r->cfa_offset;
    const uint64_t ra_at = cfa + (uint64_t)(int64_t)r->ra_offset;
    uint64_t ra;
    if (!stack_word(ra_at, lo, hi, &ra)) return 0;
    if (ra == c->return_stub) { /* an outer hooked call of this thread: its real return */
      uint32_t i = t->depth;
      while (i && t->shadow[i - 1].slot != ra_at) --i;
      if (!i) return 0;
      ra = t->shadow[i - 1].ret;
    }
    if (r->rbp == PTMEM_RBP_AT_CFA) {
      if (!stack_word(cfa + (uint64_t)(int64_t)r->rbp_offset, lo, hi, &rbp)) return 0;
      rbp_known = 1;
    } else if (r->rbp != PTMEM_RBP_SAME) {
      rbp_known = 0;
    }
    if (ra == 0 || (cfa == sp && ra == pc)) break;  /* the end, or no progress */
    out[n++] = ra;
    sp = cfa;
    pc = ra;
    key = ra | PTMEM_RULE_ADJUSTED;
  }
  return n;
}

/* Drops shadow entries whose frames are gone (a longjmp went past them): their slot lies
 * below |sp| or no longer holds our return stub. */
static void abandon(struct ptmem_control* c, struct ptmem_thread* t, uint32_t index,
                    const struct ptmem_shadow* s) {
  struct ptmem_record* r = (struct ptmem_record*)reserve(c, t, index, sizeof(struct ptmem_record));
  if (!r) return;
  r->type = PTMEM_REC_ABANDONED;
  r->hook = s->hook;
  r->size = sizeof(struct ptmem_record);
  r->tid = t->tid;
  r->stack_len = 0;
  r->npcs = r->walk = 0;
  r->seq = s->seq;
  r->sp = s->slot;
  r->cap_len[0] = r->cap_len[1] = 0;
  r->ts = rdtsc();
  publish(t, r->size);
}

static void prune(struct ptmem_control* c, struct ptmem_thread* t, uint32_t index, uint64_t sp) {
  while (t->depth) {
    struct ptmem_shadow* s = &t->shadow[t->depth - 1];
    if (s->slot >= sp && *(const uint64_t*)s->slot == c->return_stub) break;
    --t->depth;
    abandon(c, t, index, s);
  }
}

/* No rule for some frame yet: ptmem unwinds this thread while it is stopped, as the
 * breakpoint engine does at its stops, and learns the rules on the way (so this is once
 * per new call path).  Only when ptmem is surely there, and the signal would not wait
 * behind the thread's mask.  Returns the pcs written to |out|, 0 for none. */
static uint32_t ask(struct ptmem_control* c, struct ptmem_thread* t, uint64_t fn, uint64_t sp,
                    const struct entry_frame* f, uint64_t* out) {
  if (!c->ask_on || c->host_gone || rdtsc() - c->heartbeat > c->stale_ticks / 2) return 0;
  uint64_t mask = 0;
  if (sys4(SYS_rt_sigprocmask, 0 /* SIG_BLOCK */, 0, (long)&mask, 8) != 0 ||
      (mask & (1ull << (PTMEM_ASK_SIGNAL - 1))))
    return 0;
  t->ask_regs[0] = fn;
  t->ask_regs[1] = sp;
  t->ask_regs[2] = f->rbx;
  t->ask_regs[3] = f->rbp;
  t->ask_regs[4] = f->r12;
  t->ask_regs[5] = f->r13;
  t->ask_regs[6] = f->r14;
  t->ask_regs[7] = f->r15;
  t->answered = 0;
  t->asking = 1;
  BARRIER();
  int32_t info[32];  /* siginfo_t: signo, errno, code, pad, then si_pid, si_uid, si_value */
  memset(info, 0, sizeof info);
  info[0] = PTMEM_ASK_SIGNAL;
  info[2] = -1; /* SI_QUEUE */
  info[4] = c->pid;
  info[6] = PTMEM_ASK_MAGIC;
  sys4(SYS_rt_tgsigqueueinfo, c->pid, t->tid, PTMEM_ASK_SIGNAL, (long)info);
  BARRIER();
  t->asking = 0;
  if (!t->answered) return 0;
  uint32_t n = t->npcs_answer < c->max_frames ? t->npcs_answer : c->max_frames;
  memcpy(out, t->answer, n * 8);
  return n;
}

uint64_t agent_on_entry(struct entry_frame* f, uint64_t hook) {
  struct ptmem_control* c = control();
  const struct ptmem_hook* h = &c->hooks[hook & (PTMEM_MAX_HOOKS - 1)];
  const uint64_t pass = h->prologue;
  if (!c->enabled) return pass;
  uint32_t index;
  struct ptmem_thread* t = my_thread(c, &index);
  if (UNLIKELY(!t)) {
    __atomic_fetch_add(&c->no_slot, 1, __ATOMIC_RELAXED);
    return pass;
  }
  if (UNLIKELY(t->busy || t->suspended)) {
    if (t->busy) ++t->missed;
    return pass;
  }
  t->busy = 1;
  BARRIER();
  const uint64_t sp = (uint64_t)(uintptr_t)&f->ret;
  /* The tail jump of the call just recorded (operator delete -> free) is not a call. */
  const uint64_t tail_sp = t->tail_sp;
  t->tail_sp = 0;
  if (UNLIKELY(tail_sp == sp && t->tail_a0 == f->rdi)) {
    if (h->flags & PTMEM_HOOK_TAIL) t->tail_sp = sp;  /* and it jumps on */
    t->busy = 0;
    return pass;
  }
  prune(c, t, index, sp);
  /* Calls of one family nest only as "record the outermost" (realloc -> malloc, fopen ->
   * open).  A tail call (realloc(NULL, n) -> jmp malloc) has the same sp. */
  for (uint32_t i = 0; i < t->depth; ++i)
    if (t->shadow[i].family == h->family) {
      t->busy = 0;
      return pass;
    }
  const int wants_return = (h->flags & PTMEM_HOOK_RETURN) != 0;
  if (UNLIKELY(wants_return && t->depth == PTMEM_SHADOW_DEPTH)) {
    ++t->missed;
    t->busy = 0;
    return pass;
  }
  const int wants_stack = (h->flags & PTMEM_HOOK_STACK) != 0;
  const uint32_t size =
      round8((uint32_t)sizeof(struct ptmem_record) + PTMEM_MAX_CAPTURE +
             (wants_stack ? (c->max_frames > c->stack_copy / 8 ? c->max_frames * 8 : c->stack_copy) : 0));
  struct ptmem_record* r = (struct ptmem_record*)reserve(c, t, index, size);
  if (UNLIKELY(!r)) {
    t->busy = 0;
    return pass;
  }
  const uint64_t args[6] = {f->rdi, f->rsi, f->rdx, f->rcx, f->r8, f->r9};
  r->type = PTMEM_REC_ENTRY;
  r->hook = (uint16_t)hook;
  r->tid = t->tid;
  r->seq = t->seq++;
  for (int i = 0; i < 6; ++i) r->args[i] = args[i];
  r->sp = sp;
  r->regs[0] = f->rbx;
  r->regs[1] = f->rbp;
  r->regs[2] = f->r12;
  r->regs[3] = f->r13;
  r->regs[4] = f->r14;
  r->regs[5] = f->r15;
  uint32_t cap = capture(r, h->capture, args, 0, 0);
  cap = round8(cap);  /* pcs stay aligned */
  uint8_t* after = (uint8_t*)(r + 1) + cap;
  uint32_t stack = 0, npcs = 0;
  if (wants_stack) {
    npcs = walk(c, t, h->address, sp, f->rbp, (uint64_t*)(uintptr_t)after);
    if (!npcs) npcs = ask(c, t, h->address, sp, f, (uint64_t*)(uintptr_t)after);
    if (!npcs && sp < t->stack_hi) {
      /* ptmem unwinds this one from a copy of the stack (and learns its rules). */
      uint64_t room = t->stack_hi - sp;
      stack = copy_safely(after, sp, room < c->stack_copy ? (uint32_t)room : c->stack_copy, c->pid);
      /* Outer hooked calls of this thread return to our stub: show the unwinder the real
       * return addresses instead. */
      for (uint32_t i = 0; i < t->depth; ++i) {
        uint64_t slot = t->shadow[i].slot;
        if (slot >= sp && slot + 8 <= sp + stack) memcpy(after + (slot - sp), &t->shadow[i].ret, 8);
      }
    }
  }
  r->npcs = (uint16_t)npcs;
  r->walk = npcs ? PTMEM_WALK_DONE : PTMEM_WALK_NONE;
  r->stack_len = stack;
  r->size = round8((uint32_t)sizeof(struct ptmem_record) + cap + npcs * 8 + stack);
  if (wants_return) {
    struct ptmem_shadow* s = &t->shadow[t->depth++];
    s->slot = sp;
    s->ret = f->ret;
    s->seq = r->seq;
    s->hook = (uint16_t)hook;
    s->family = h->family;
    s->cap_arg = h->capture == PTMEM_CAP_RET_A3_8 ? args[3] : h->capture == PTMEM_CAP_RET_MSGHDR ? args[1] : args[0];
    f->ret = c->return_stub;
  } else if (h->flags & PTMEM_HOOK_TAIL) {
    t->tail_sp = sp;
    t->tail_a0 = args[0];
  }
  /* The timestamp orders this call among all threads' (ptmem merges by it): taken last,
   * right before the real function runs (a free, a close) and after the record is
   * complete, so ptmem never sees a later event before this one is published. */
  r->ts = rdtsc();
  publish(t, r->size);
  BARRIER();
  t->busy = 0;
  return pass;
}

uint64_t agent_on_return(struct return_frame* f) {
  struct ptmem_control* c = control();
  const uint64_t slot = (uint64_t)(uintptr_t)(&f->real_ret + 1) - 8;
  uint32_t index;
  struct ptmem_thread* t = my_thread(c, &index);
  /* Find our entry: those above it were left by a longjmp. */
  uint32_t d = t ? t->depth : 0;
  while (d && t->shadow[d - 1].slot != slot) --d;
  if (UNLIKELY(!t || !d)) {
    /* Cannot happen while the shadow stacks are intact.  There is no safe place to go. */
    __builtin_trap();
  }
  struct ptmem_shadow s = t->shadow[d - 1];
  t->depth = d - 1;
  if (c->enabled && !t->busy) {
    t->busy = 1;
    BARRIER();
    const uint32_t size = round8((uint32_t)sizeof(struct ptmem_record) + PTMEM_MAX_CAPTURE);
    struct ptmem_record* r = (struct ptmem_record*)reserve(c, t, index, size);
    if (r) {
      const struct ptmem_hook* h = &c->hooks[s.hook & (PTMEM_MAX_HOOKS - 1)];
      r->type = PTMEM_REC_RETURN;
      r->hook = s.hook;
      r->tid = t->tid;
      r->seq = s.seq;
      r->stack_len = 0;
      r->npcs = r->walk = 0;
      r->args[0] = f->rax;
      r->sp = slot;
      /* Each capture reads one argument, kept in the shadow entry. */
      const uint64_t args[6] = {s.cap_arg, s.cap_arg, s.cap_arg, s.cap_arg, s.cap_arg, s.cap_arg};
      uint32_t cap = capture(r, h->capture, args, f->rax, 1);
      r->size = round8((uint32_t)sizeof(struct ptmem_record) + cap);
      r->ts = rdtsc();
      publish(t, r->size);
    }
    BARRIER();
    t->busy = 0;
  }
  return s.ret;
}
