/* The contract between ptmem and the agent it injects into a traced process: the agent's
 * header at the start of its code, the shared control region (a memfd both map), and the
 * records the agent writes into per-thread rings.  Plain C: the agent is freestanding C
 * (src/agent/), the host is C++ (src/inject/).  Everything in the shared region is an
 * offset or a target address, never a host pointer. */
#ifndef PTMEM_INJECT_AGENT_ABI_H
#define PTMEM_INJECT_AGENT_ABI_H
#include <stdint.h>

#define PTMEM_AGENT_MAGIC 0x746e656761746d70ull /* "ptmagent" */
#define PTMEM_CONTROL_MAGIC 0x6c72746e63746d70ull /* "ptmcntrl" */
#define PTMEM_AGENT_VERSION 1u

#define PTMEM_MAX_HOOKS 128u
#define PTMEM_MAX_THREADS 1024u   /* thread slots; a thread beyond them is passed through */
#define PTMEM_SHADOW_DEPTH 16u    /* hooked calls pending their return, per thread */
#define PTMEM_MAX_CAPTURE 256u    /* bytes of target memory a record may carry */
#define PTMEM_MAX_FRAMES 272u     /* program counters an entry record may carry */
#define PTMEM_RULE_PROBES 16u     /* linear probes of the rule table */

/* At offset 0 of the agent's code.  |control| is written by ptmem after mapping. */
struct ptmem_agent_header {
  uint64_t magic;
  uint32_t version;
  uint32_t code_size;
  uint64_t control;        /* target address of struct ptmem_control */
  uint32_t entry_offset;   /* hook entry: r11 = hook index, [rsp] = caller's return */
  uint32_t return_offset;  /* where hooked calls return to (their slot is rewritten) */
  uint32_t entry_exit_offset;   /* the entry path's way out: jmp *%r11 (to the prologue) */
  uint32_t return_exit_offset;  /* the return path's way out: ret (to the real caller) */
};

/* Hook flags. */
#define PTMEM_HOOK_RETURN 1u  /* record the result: the return address is redirected */
#define PTMEM_HOOK_STACK 2u   /* copy a stack snapshot at entry (the call creates something) */
#define PTMEM_HOOK_TAIL 4u    /* its body jumps to another traced function (operator delete
                                 -> free): that next entry, same sp and a0, is not a call */

/* What memory a record carries for the decoders (track/decoders.cpp reads it). */
enum ptmem_capture {
  PTMEM_CAP_NONE = 0,
  PTMEM_CAP_ENTRY_FILE_A0,  /* entry: int at a0 + FILE._fileno (fclose) */
  PTMEM_CAP_FREOPEN,        /* entry: int at a2 + FILE._fileno; return: at result + it */
  PTMEM_CAP_ENTRY_DIR_A0,   /* entry: int at a0 (closedir) */
  PTMEM_CAP_RET_A0_8,       /* return: 8 bytes at a0 (posix_memalign, pipe) */
  PTMEM_CAP_RET_A3_8,       /* return: 8 bytes at a3 (socketpair) */
  PTMEM_CAP_RET_FILE,       /* return: int at result + FILE._fileno (fopen) */
  PTMEM_CAP_RET_DIR,        /* return: int at result (opendir) */
  PTMEM_CAP_RET_MSGHDR,     /* return: msghdr at a1 and its control bytes (recvmsg) */
};
#define PTMEM_FILE_FILENO 0x70u

struct ptmem_hook {
  uint64_t address;   /* the function's entry (first pc of its stacks) */
  uint64_t prologue;  /* its relocated first instructions, then a jump back */
  uint16_t function;  /* row of track::traced_functions() */
  uint8_t family;     /* track::Family */
  uint8_t flags;      /* PTMEM_HOOK_* */
  uint8_t capture;    /* enum ptmem_capture */
  uint8_t pad[3];
};

struct ptmem_shadow {  /* one hooked call waiting for its return */
  uint64_t slot;       /* stack address of its return address (rsp at entry) */
  uint64_t ret;        /* the real return address */
  uint64_t seq;        /* its entry record */
  uint64_t cap_arg;    /* the argument the return's capture reads */
  uint16_t hook;
  uint8_t family;
  uint8_t pad[5];
};

/* One per thread.  key = the thread's TCB (%fs:0), claimed once with a compare-and-swap;
 * everything else is written by that thread only, apart from |tail| (ptmem) and
 * |suspended| (ptmem, while the thread is stopped). */
struct ptmem_thread {
  uint64_t key;
  int32_t tid;
  uint32_t suspended;  /* ptmem: pass this thread's calls through (a vfork child borrows it) */
  uint32_t busy;       /* the agent runs on this thread: a nested call (signal) passes */
  uint32_t depth;      /* entries of shadow[] in use */
  uint64_t seq;        /* next entry record number */
  uint64_t stack_hi;   /* top of the thread's stack (copies never read past it) */
  uint64_t missed;     /* calls passed through unrecorded while recording was on */
  uint64_t tail_sp;    /* the last PTMEM_HOOK_TAIL entry's sp and a0, 0 if none */
  uint64_t tail_a0;
  struct ptmem_shadow shadow[PTMEM_SHADOW_DEPTH];
  /* A stack the agent cannot walk yet: it asks ptmem, which unwinds the stopped thread and
   * answers here (see PTMEM_ASK_SIGNAL). */
  uint64_t ask_regs[8];       /* agent: the entry's rip rsp rbx rbp r12 r13 r14 r15 */
  volatile uint32_t asking;   /* agent: 1 while its question is out */
  volatile uint32_t answered; /* ptmem: answer[] holds npcs_answer pcs */
  uint32_t npcs_answer;
  uint32_t pad_ask;
  uint64_t answer[PTMEM_MAX_FRAMES];
  uint64_t head __attribute__((aligned(64)));  /* bytes written (agent) */
  uint64_t tail __attribute__((aligned(64)));  /* bytes consumed (ptmem) */
  uint8_t pad_end[56];
};

/* Where a thread's slot is looked for first (then linearly): the agent claims it there,
 * ptmem finds it there.  Slots are never given back, so an empty one ends a search. */
static inline uint32_t ptmem_thread_hash(uint64_t tcb) {
  return (uint32_t)(((tcb >> 6) * 0x9E3779B97F4A7C15ull) >> 54) & (PTMEM_MAX_THREADS - 1);
}

/* The unwind step of one pc, published by ptmem (the only writer: fields first, then the
 * key with a release store) for the agent's stack walk (symbols::CompactRule). */
#define PTMEM_RULE_ADJUSTED (1ull << 63) /* key bit: a return address, looked up at pc - 1 */
#define PTMEM_RULE_END 1u                /* the outermost frame */
#define PTMEM_RBP_UNKNOWN 0u
#define PTMEM_RBP_SAME 1u
#define PTMEM_RBP_AT_CFA 2u
struct ptmem_rule {
  uint64_t key;        /* pc | PTMEM_RULE_ADJUSTED?, 0 = empty slot */
  int32_t cfa_offset;
  int16_t ra_offset;
  int16_t rbp_offset;
  uint8_t cfa_reg;     /* DWARF: 6 rbp, 7 rsp */
  uint8_t rbp;         /* PTMEM_RBP_* */
  uint8_t flags;       /* PTMEM_RULE_END */
  uint8_t pad[5];
};
static inline uint32_t ptmem_rule_hash(uint64_t key, uint32_t mask) {
  return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & mask;
}

/* How the agent asks: rt_tgsigqueueinfo(pid, tid, PTMEM_ASK_SIGNAL) to its own thread,
 * si_code SI_QUEUE, si_value PTMEM_ASK_MAGIC.  ptmem sees the signal-delivery-stop, answers
 * and suppresses the signal.  Should ptmem be gone, SIGURG's default action is to ignore. */
#define PTMEM_ASK_SIGNAL 23 /* SIGURG */
#define PTMEM_ASK_MAGIC 0x616d7470 /* "ptma" */

struct ptmem_control {
  uint64_t magic;
  uint32_t version;
  uint32_t nhooks;
  volatile uint32_t enabled;    /* ptmem: 1 record, 0 pass every call straight through */
  volatile uint32_t host_gone;  /* agent: ptmem is gone (set once, recording stops) */
  volatile uint64_t heartbeat;  /* ptmem: TSC at its last drain */
  uint64_t stale_ticks;         /* TSC ticks without heartbeat after which the agent looks */
  int32_t pid;                  /* the main thread (its stack top is main_stack_hi) */
  int32_t host_pid;             /* ptmem's pid: gone when kill(host_pid, 0) fails or it is a zombie */
  uint32_t pad0;
  char host_stat[32];           /* "/proc/HOST_PID/stat" */
  uint32_t tid_offset;          /* offset of the tid in glibc's TCB, 0 if unknown */
  uint64_t main_stack_hi;
  uint32_t stack_copy;          /* bytes of stack copied per creating call */
  uint32_t ring_bytes;          /* per thread, a power of two */
  uint64_t return_stub;         /* target address of the agent's return path */
  uint64_t threads_offset;      /* struct ptmem_thread[PTMEM_MAX_THREADS] */
  uint64_t rings_offset;        /* PTMEM_MAX_THREADS rings of ring_bytes */
  uint64_t no_slot;             /* calls passed through: every thread slot taken */
  uint64_t rules_offset;        /* struct ptmem_rule[rules_mask + 1] */
  uint32_t rules_mask;
  volatile uint32_t rules_on;   /* ptmem: 0 once a module went away (its pcs may be reused) */
  uint32_t max_frames;          /* frames per walked stack, <= PTMEM_MAX_FRAMES */
  volatile uint32_t ask_on;     /* ptmem: the agent may ask for a stack it cannot walk */
  uint32_t pad1;
  struct ptmem_hook hooks[PTMEM_MAX_HOOKS];
};

/* Records: 8-byte aligned, contiguous in the ring (a PAD record fills a ring's end). */
/* ABANDONED: the call's frame was unwound (exception, cancellation) or jumped over
 * (longjmp): it will never return. */
enum ptmem_record_type {
  PTMEM_REC_PAD = 0, PTMEM_REC_ENTRY = 1, PTMEM_REC_RETURN = 2, PTMEM_REC_ABANDONED = 3
};

struct ptmem_record {
  uint16_t type;
  uint16_t hook;
  uint32_t size;       /* whole record, header included, multiple of 8 */
  int32_t tid;
  uint32_t stack_len;  /* entry: bytes of stack that follow the captures */
  uint64_t seq;        /* entry number (a return names its entry) */
  uint64_t ts;         /* TSC: entry, before the call runs; return, after it ran */
  uint64_t args[6];    /* entry: the arguments; return: args[0] = rax */
  uint64_t sp;         /* entry: rsp (points at the return address) */
  uint64_t regs[6];    /* entry: rbx rbp r12 r13 r14 r15, for the unwinder */
  uint64_t cap_addr[2];
  uint16_t cap_len[2]; /* capture bytes follow the header, cap 0 then cap 1 */
  uint16_t npcs;       /* entry: walked pcs that follow the captures (the function first) */
  uint16_t walk;       /* entry: PTMEM_WALK_* */
};
/* How an entry's stack came: walked in full by the agent (npcs pcs, no snapshot), or
 * not (a pc without a published rule, a read out of the stack): a snapshot follows. */
#define PTMEM_WALK_NONE 0u
#define PTMEM_WALK_DONE 1u

#endif
