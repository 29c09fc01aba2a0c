#include "ptmem/inject/agent_host.hpp"

#include <algorithm>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <x86intrin.h>

extern "C" const uint8_t _binary_agent_bin_start[];
extern "C" const uint8_t _binary_agent_bin_end[];

namespace ptmem::inject {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint32_t kRules = 1u << 16;  // published unwind steps: 1 MiB, far more pcs than a program's call sites
constexpr uint64_t round_up(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }

bool failed(std::optional<uint64_t> r) { return !r || *r > static_cast<uint64_t>(-4096); }

// A hook's stub: mov r11d, index; jmp *0(%rip); .quad agent entry.
constexpr size_t kStubSize = 24;
std::vector<uint8_t> stub_code(uint32_t index, uint64_t entry) {
  std::vector<uint8_t> c = {0x41, 0xbb};
  for (int i = 0; i < 4; ++i) c.push_back(static_cast<uint8_t>(index >> (8 * i)));
  c.insert(c.end(), {0xff, 0x25, 0, 0, 0, 0});
  for (int i = 0; i < 8; ++i) c.push_back(static_cast<uint8_t>(entry >> (8 * i)));
  c.resize(kStubSize, 0xcc);
  return c;
}

uint64_t tsc_per_second() {
  // Two clock readings around a TSC pair: good to a percent, all a staleness limit needs.
  timespec a{}, b{};
  clock_gettime(CLOCK_MONOTONIC, &a);
  uint64_t t0 = __rdtsc();
  do clock_gettime(CLOCK_MONOTONIC, &b);
  while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < 2000000L);
  uint64_t t1 = __rdtsc();
  double ns = static_cast<double>((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec));
  return static_cast<uint64_t>(static_cast<double>(t1 - t0) * 1e9 / ns);
}

}  // namespace

arch::Registers entry_registers(uint64_t pc, uint64_t sp, const uint64_t callee_saved[6]) {
  arch::Registers r;
  r.raw.rip = pc;
  r.raw.rsp = sp;
  r.raw.rbx = callee_saved[0];
  r.raw.rbp = callee_saved[1];
  r.raw.r12 = callee_saved[2];
  r.raw.r13 = callee_saved[3];
  r.raw.r14 = callee_saved[4];
  r.raw.r15 = callee_saved[5];
  return r;
}

ptmem_capture capture_of(const track::TracedFunction& fn) {
  using track::Action;
  switch (fn.action) {
    case Action::PosixMemalign:
    case Action::FdPipe: return PTMEM_CAP_RET_A0_8;
    case Action::FdSocketpair: return PTMEM_CAP_RET_A3_8;
    case Action::FileOpen: return fn.name.starts_with("freopen") ? PTMEM_CAP_FREOPEN : PTMEM_CAP_RET_FILE;
    case Action::FileClose: return PTMEM_CAP_ENTRY_FILE_A0;
    case Action::DirOpen: return PTMEM_CAP_RET_DIR;
    case Action::DirClose: return PTMEM_CAP_ENTRY_DIR_A0;
    case Action::RecvMsg: return PTMEM_CAP_RET_MSGHDR;
    default: return PTMEM_CAP_NONE;
  }
}

AgentHost::AgentHost(ptmem_control* control, size_t bytes)
    : control_(control), region_bytes_(bytes), drain_(control, bytes) {}

AgentHost::~AgentHost() {
  beat_.request_stop();
  beat_cv_.notify_all();
  if (beat_.joinable()) beat_.join();
  ::munmap(control_, region_bytes_);
}

void AgentHost::start_heartbeat() {
  beat_ = std::jthread([this](std::stop_token stop) {
    std::unique_lock lock(beat_mutex_);
    while (!stop.stop_requested()) {
      __atomic_store_n(&control_->heartbeat, __rdtsc(), __ATOMIC_RELEASE);
      beat_cv_.wait_for(lock, stop, std::chrono::milliseconds(100), [] { return false; });
    }
  });
}

std::variant<std::unique_ptr<AgentHost>, std::string> AgentHost::inject(Target& target, const Options& opt) {
  const size_t blob = static_cast<size_t>(_binary_agent_bin_end - _binary_agent_bin_start);
  ptmem_agent_header header;
  if (blob < sizeof header) return std::string("the agent is missing from this build");
  std::memcpy(&header, _binary_agent_bin_start, sizeof header);
  if (header.magic != PTMEM_AGENT_MAGIC || header.version != PTMEM_AGENT_VERSION || header.code_size > blob)
    return std::string("the agent built into ptmem is not the one it expects");
  if (opt.ring_bytes < 64 * 1024 || (opt.ring_bytes & (opt.ring_bytes - 1)))
    return std::string("bad ring size");

  // The agent's code, and after it the memfd's name.
  static constexpr char kName[] = "ptmem-agent";
  const uint64_t code_map = round_up(blob + sizeof kName, kPage);
  auto code = target.syscall(SYS_mmap, {0, code_map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                                        static_cast<uint64_t>(-1), 0});
  if (failed(code)) return std::string("cannot map the agent's code in the target");
  auto undo_code = [&] { target.syscall(SYS_munmap, {*code, code_map, 0, 0, 0, 0}); };

  // The shared region: control, thread slots, rings.
  const uint64_t threads_offset = round_up(sizeof(ptmem_control), kPage);
  const uint64_t rules_offset = round_up(threads_offset + sizeof(ptmem_thread) * PTMEM_MAX_THREADS, kPage);
  const uint64_t rings_offset = round_up(rules_offset + sizeof(ptmem_rule) * kRules, kPage);
  const uint64_t bytes = rings_offset + uint64_t{opt.ring_bytes} * PTMEM_MAX_THREADS;
  if (!target.memory().write(*code + blob, kName, sizeof kName)) {
    undo_code();
    return std::string("cannot write into the target's memory");
  }
  auto fd = target.syscall(SYS_memfd_create, {*code + blob, MFD_CLOEXEC, 0, 0, 0, 0});
  if (failed(fd)) {
    undo_code();
    return std::string("memfd_create failed in the target");
  }
  int host_fd = ::open(fmt::format("/proc/{}/fd/{}", target.pid(), *fd).c_str(), O_RDWR | O_CLOEXEC);
  void* host = MAP_FAILED;
  if (host_fd >= 0 && ::ftruncate(host_fd, static_cast<off_t>(bytes)) == 0)
    host = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, host_fd, 0);
  if (host_fd >= 0) ::close(host_fd);
  std::optional<uint64_t> region;
  if (host != MAP_FAILED)
    region = target.syscall(SYS_mmap, {0, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0});
  target.syscall(SYS_close, {*fd, 0, 0, 0, 0, 0});
  if (host == MAP_FAILED || failed(region)) {
    if (host != MAP_FAILED) ::munmap(host, bytes);
    if (!failed(region)) target.syscall(SYS_munmap, {*region, bytes, 0, 0, 0, 0});
    undo_code();
    return std::string("cannot share memory with the target");
  }

  auto* c = static_cast<ptmem_control*>(host);
  std::memset(c, 0, sizeof *c);
  c->magic = PTMEM_CONTROL_MAGIC;
  c->version = PTMEM_AGENT_VERSION;
  c->heartbeat = __rdtsc();
  c->stale_ticks = tsc_per_second() / 2;  // half a second without a beat: is ptmem alive?
  c->pid = target.pid();
  c->host_pid = ::getpid();
  fmt::format_to_n(c->host_stat, sizeof c->host_stat - 1, "/proc/{}/stat", ::getpid());
  c->tid_offset = opt.tid_offset;
  c->main_stack_hi = opt.main_stack_hi;
  c->stack_copy = opt.stack_copy;
  c->ring_bytes = opt.ring_bytes;
  c->return_stub = *code + header.return_offset;
  c->threads_offset = threads_offset;
  c->rings_offset = rings_offset;
  c->rules_offset = rules_offset;
  c->rules_mask = kRules - 1;
  c->max_frames = std::clamp<uint32_t>(opt.max_frames, 1, PTMEM_MAX_FRAMES);
  c->rules_on = 1;
  c->ask_on = 1;

  // The code goes in writable, with the header's control address, then becomes
  // executable and read-only.
  std::vector<uint8_t> image(_binary_agent_bin_start, _binary_agent_bin_end);
  uint64_t control_addr = *region;
  std::memcpy(image.data() + offsetof(ptmem_agent_header, control), &control_addr, 8);
  std::unique_ptr<AgentHost> h(new AgentHost(c, bytes));
  h->region_ = *region;
  h->code_ = *code;
  h->code_size_ = header.code_size;
  h->code_map_ = code_map;
  h->entry_ = *code + header.entry_offset;
  h->entry_exit_ = *code + header.entry_exit_offset;
  h->return_exit_ = *code + header.return_exit_offset;
  h->start_heartbeat();
  if (!target.memory().write(*code, image.data(), image.size()) ||
      failed(target.syscall(SYS_mprotect, {*code, code_map, PROT_READ | PROT_EXEC, 0, 0, 0}))) {
    h->unmap(target, false);
    return std::string("cannot write the agent into the target");
  }
  return h;
}

std::optional<std::string> AgentHost::hook(Target& target, int function, uint64_t address,
                                           std::span<const uint8_t> code, bool tail_jump) {
  auto functions = track::traced_functions();
  if (function < 0 || static_cast<size_t>(function) >= functions.size()) return "not a traced function";
  if (hooks_.size() >= PTMEM_MAX_HOOKS) return "too many hooks";
  if (hooked(address)) return std::nullopt;
  const auto& fn = functions[static_cast<size_t>(function)];
  auto slot = target.code_slot(address, kStubSize + arch::kMaxPrologueCode);
  if (!slot) return "no room for its relocated entry within reach";
  auto relocated = arch::relocate_prologue(address, code, *slot + kStubSize);
  if (auto* why = std::get_if<std::string>(&relocated)) return *why;
  Hook hk;
  hk.prologue = std::get<arch::Prologue>(std::move(relocated));
  hk.stub = *slot;
  auto jump = arch::jump_rel32(hk.prologue.patch, hk.stub);
  if (jump.size() != arch::kHookJumpSize) return "its stub is out of a jump's reach";
  hk.original.resize(jump.size());
  auto& mem = target.memory();
  if (!mem.read(hk.prologue.patch, hk.original.data(), hk.original.size())) return "cannot read its code";

  const auto index = static_cast<uint32_t>(hooks_.size());
  ptmem_hook& row = control_->hooks[index];
  row.address = address;
  row.prologue = hk.prologue.slot;
  row.function = static_cast<uint16_t>(function);
  row.family = static_cast<uint8_t>(fn.family);
  row.flags = static_cast<uint8_t>((fn.needs_return ? PTMEM_HOOK_RETURN : 0) |
                                   (tail_jump && !fn.needs_return ? PTMEM_HOOK_TAIL : 0));
  row.capture = static_cast<uint8_t>(capture_of(fn));
  // A stack wherever the call may create something: the agent does not look at
  // arguments or results (fcntl creates only for F_DUPFD, recvmsg only with SCM_RIGHTS).
  if (track::creates(fn.action) || fn.action == track::Action::RecvMsg) row.flags |= PTMEM_HOOK_STACK;
  auto stub = stub_code(index, entry_);
  if (!mem.write(hk.stub, stub.data(), stub.size()) ||
      !mem.write(hk.prologue.slot, hk.prologue.code.data(), hk.prologue.code.size()))
    return "cannot write its stub";
  control_->nhooks = index + 1;
  if (!mem.write(hk.prologue.patch, jump.data(), jump.size())) return "cannot patch it";
  hooks_.push_back(std::move(hk));
  return std::nullopt;
}

bool AgentHost::hooked(uint64_t address) const {
  for (auto& h : hooks_)
    if (h.prologue.entry == address) return true;
  return false;
}

void AgentHost::set_enabled(bool on) { __atomic_store_n(&control_->enabled, on ? 1u : 0u, __ATOMIC_RELEASE); }

uint64_t AgentHost::after_patch(uint64_t pc) const {
  for (auto& h : hooks_)
    if (h.prologue.in_patch(pc))
      if (uint64_t to = h.prologue.to_copy(pc)) return to;
  return pc;
}

std::optional<uint64_t> AgentHost::before_unpatch(uint64_t pc) const {
  if (in_agent(pc)) return std::nullopt;
  for (auto& h : hooks_) {
    if (pc >= h.stub && pc < h.stub + kStubSize) return h.prologue.entry;  // r11 is scratch here
    if (h.prologue.in_copy(pc)) {
      uint64_t to = h.prologue.to_original(pc);
      return to ? std::optional<uint64_t>(to) : std::nullopt;
    }
  }
  return pc;
}

void AgentHost::trap_exits(arch::MemoryAccess& mem) {
  static constexpr uint8_t kInt3 = 0xcc;
  if (!mem.read(entry_exit_, &exit_bytes_[0], 1) || !mem.read(return_exit_, &exit_bytes_[1], 1)) return;
  mem.write(entry_exit_, &kInt3, 1);
  mem.write(return_exit_, &kInt3, 1);
}

void AgentHost::untrap_exits(arch::MemoryAccess& mem) const {
  if (!exit_bytes_[0]) return;
  mem.write(entry_exit_, &exit_bytes_[0], 1);
  mem.write(return_exit_, &exit_bytes_[1], 1);
}

bool AgentHost::take_exit(arch::Registers& regs, arch::MemoryAccess& mem) const {
  const uint64_t pc = regs.ip();
  if (pc == entry_exit_ || pc == entry_exit_ + 1) {  // jmp *%r11, to a prologue's copy
    regs.set_ip(regs.raw.r11);
    return true;
  }
  if (pc == return_exit_ || pc == return_exit_ + 1) {  // ret, to the real caller
    uint64_t ret = 0;
    if (!mem.read(regs.sp(), &ret, 8)) return false;
    regs.set_ip(ret);
    regs.set_sp(regs.sp() + 8);
    return true;
  }
  return false;
}

ptmem_thread* AgentHost::thread_of(uint64_t fs_base) const {
  if (!fs_base) return nullptr;
  auto* all = reinterpret_cast<ptmem_thread*>(reinterpret_cast<uint8_t*>(control_) + control_->threads_offset);
  const uint32_t h = ptmem_thread_hash(fs_base);
  for (uint32_t probe = 0; probe < PTMEM_MAX_THREADS; ++probe) {
    ptmem_thread& t = all[(h + probe) & (PTMEM_MAX_THREADS - 1)];
    uint64_t key = __atomic_load_n(&t.key, __ATOMIC_ACQUIRE);
    if (key == fs_base) return &t;
    if (key == 0) return nullptr;
  }
  return nullptr;
}

void AgentHost::redirected(uint64_t fs_base, std::vector<std::pair<uint64_t, uint64_t>>& out) const {
  if (ptmem_thread* t = thread_of(fs_base))
    for (uint32_t i = 0; i < t->depth && i < PTMEM_SHADOW_DEPTH; ++i) out.emplace_back(t->shadow[i].slot, t->shadow[i].ret);
}

void AgentHost::restore_returns(uint64_t fs_base, arch::MemoryAccess& mem) const {
  std::vector<std::pair<uint64_t, uint64_t>> slots;
  redirected(fs_base, slots);
  for (auto [slot, ret] : slots) {
    uint64_t now = 0;
    if (mem.read(slot, &now, 8) && now == control_->return_stub) mem.write(slot, &ret, 8);
  }
}

void AgentHost::abandon_calls(uint64_t fs_base, uint64_t sp, arch::MemoryAccess& mem) {
  ptmem_thread* t = thread_of(fs_base);
  if (!t || t->busy) return;
  const uint64_t mask = control_->ring_bytes - 1;
  auto* all = reinterpret_cast<ptmem_thread*>(reinterpret_cast<uint8_t*>(control_) + control_->threads_offset);
  uint8_t* ring = reinterpret_cast<uint8_t*>(control_) + control_->rings_offset +
                  static_cast<uint64_t>(t - all) * control_->ring_bytes;
  while (t->depth && t->shadow[t->depth - 1].slot < sp) {
    const ptmem_shadow& s = t->shadow[--t->depth];
    uint64_t now = 0;
    if (mem.read(s.slot, &now, 8) && now == control_->return_stub) mem.write(s.slot, &s.ret, 8);
    // The thread is stopped outside the agent: ptmem may write its ring for it.
    uint64_t head = t->head, off = head & mask;
    if (off + sizeof(ptmem_record) > control_->ring_bytes) {
      auto* pad = reinterpret_cast<ptmem_record*>(ring + off);
      pad->type = PTMEM_REC_PAD;
      pad->size = static_cast<uint32_t>(control_->ring_bytes - off);
      head += pad->size;
      off = 0;
    }
    if (head + sizeof(ptmem_record) - __atomic_load_n(&t->tail, __ATOMIC_ACQUIRE) > control_->ring_bytes) {
      __atomic_store_n(&t->head, head, __ATOMIC_RELEASE);
      continue;  // full: the final drain forgets the call instead
    }
    auto* r = reinterpret_cast<ptmem_record*>(ring + off);
    std::memset(r, 0, sizeof *r);
    r->type = PTMEM_REC_ABANDONED;
    r->hook = s.hook;
    r->size = sizeof *r;
    r->tid = t->tid;
    r->seq = s.seq;
    r->sp = s.slot;
    r->ts = __rdtsc();
    __atomic_store_n(&t->head, head + sizeof *r, __ATOMIC_RELEASE);
  }
}

bool AgentHost::publish(uint64_t pc, bool adjusted, const symbols::CompactRule& rule) {
  if (!control_->rules_on || pc == 0 || pc >= PTMEM_RULE_ADJUSTED) return false;
  if (rule.cfa_offset != static_cast<int32_t>(rule.cfa_offset) || rule.ra_offset != static_cast<int16_t>(rule.ra_offset) ||
      rule.rbp_offset != static_cast<int16_t>(rule.rbp_offset))
    return false;
  const uint64_t key = pc | (adjusted ? PTMEM_RULE_ADJUSTED : 0);
  auto* rules = reinterpret_cast<ptmem_rule*>(reinterpret_cast<uint8_t*>(control_) + control_->rules_offset);
  uint32_t i = ptmem_rule_hash(key, control_->rules_mask);
  for (uint32_t probe = 0; probe < PTMEM_RULE_PROBES; ++probe, i = (i + 1) & control_->rules_mask) {
    ptmem_rule& r = rules[i];
    uint64_t k = __atomic_load_n(&r.key, __ATOMIC_ACQUIRE);
    if (k == key) return true;
    if (k != 0) continue;
    r.cfa_offset = rule.cfa_offset;
    r.ra_offset = static_cast<int16_t>(rule.ra_offset);
    r.rbp_offset = static_cast<int16_t>(rule.rbp_offset);
    r.cfa_reg = rule.cfa_reg;
    r.rbp = rule.rbp == symbols::CompactRule::RbpSame    ? PTMEM_RBP_SAME
            : rule.rbp == symbols::CompactRule::RbpAtCfa ? PTMEM_RBP_AT_CFA
                                                         : PTMEM_RBP_UNKNOWN;
    r.flags = rule.end ? PTMEM_RULE_END : 0;
    __atomic_store_n(&r.key, key, __ATOMIC_RELEASE);  // fields first: agents read the key first
    return true;
  }
  return false;
}

void AgentHost::rules_off() { __atomic_store_n(&control_->rules_on, 0u, __ATOMIC_RELEASE); }

std::optional<arch::Registers> AgentHost::question(uint64_t fs_base) const {
  ptmem_thread* t = thread_of(fs_base);
  if (!t || !__atomic_load_n(&t->asking, __ATOMIC_ACQUIRE)) return std::nullopt;
  arch::Registers r = entry_registers(t->ask_regs[0], t->ask_regs[1], t->ask_regs + 2);
  r.raw.fs_base = fs_base;
  return r;
}

void AgentHost::answer(uint64_t fs_base, std::span<const uint64_t> pcs) {
  ptmem_thread* t = thread_of(fs_base);
  if (!t) return;
  const size_t n = std::min<size_t>(pcs.size(), PTMEM_MAX_FRAMES);
  std::copy_n(pcs.begin(), n, t->answer);
  t->npcs_answer = static_cast<uint32_t>(n);
  __atomic_store_n(&t->answered, n ? 1u : 0u, __ATOMIC_RELEASE);
}

void AgentHost::set_asking(bool on) { __atomic_store_n(&control_->ask_on, on ? 1u : 0u, __ATOMIC_RELEASE); }

void AgentHost::suspend(uint64_t fs_base, bool on) {
  if (ptmem_thread* t = thread_of(fs_base)) __atomic_store_n(&t->suspended, on ? 1u : 0u, __ATOMIC_RELEASE);
}

void AgentHost::unpatch(arch::MemoryAccess& mem) const {
  for (auto& h : hooks_) mem.write(h.prologue.patch, h.original.data(), h.original.size());
}

bool AgentHost::busy() const {
  auto* all = reinterpret_cast<ptmem_thread*>(reinterpret_cast<uint8_t*>(control_) + control_->threads_offset);
  for (uint32_t i = 0; i < PTMEM_MAX_THREADS; ++i)
    if (all[i].key && __atomic_load_n(&all[i].busy, __ATOMIC_ACQUIRE)) return true;
  return false;
}

uint64_t AgentHost::missed() const {
  uint64_t n = control_->no_slot;
  auto* all = reinterpret_cast<ptmem_thread*>(reinterpret_cast<uint8_t*>(control_) + control_->threads_offset);
  for (uint32_t i = 0; i < PTMEM_MAX_THREADS; ++i) n += all[i].missed;
  return n;
}

void AgentHost::unmap(Target& target, bool keep) {
  // A thread that will still run agent code (a signal handler interrupted it there) needs
  // the code and the region it reads: both stay, recording off.
  if (!keep && region_) target.syscall(SYS_munmap, {region_, region_bytes_, 0, 0, 0, 0});
  if (!keep && code_) target.syscall(SYS_munmap, {code_, code_map_, 0, 0, 0, 0});
  region_ = 0;
  code_ = 0;
}

}  // namespace ptmem::inject
