// relocate_prologue: the planner (step_over.cpp) decodes each displaced instruction and
// says how it depends on its address; here they are re-emitted for the copy.  Straight-line
// code is copied (RIP-relative displacement re-aimed), rel8/rel32 branches become rel32
// branches to the same absolute target, a direct call becomes a push of its original
// return address and a jump, syscall is copied as is (the kernel returns to the next
// instruction wherever that is).
#include "ptmem/arch/prologue.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "ptmem/arch/step_over.hpp"
#include "step_detail.hpp"

namespace ptmem::arch {
namespace {

using Detail = StepPlan::Detail;

constexpr uint8_t kEndbr64[] = {0xf3, 0x0f, 0x1e, 0xfa};
constexpr size_t kMaxScan = 64 * 1024;

bool rel32(int64_t v) {
  return v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max();
}

void put32(std::vector<uint8_t>& out, int32_t v) {
  uint8_t b[4];
  std::memcpy(b, &v, 4);
  out.insert(out.end(), b, b + 4);
}

// Where a direct branch goes, if |plan| is one.
std::optional<uint64_t> branch_target(const StepPlan& plan) {
  if (!plan.detail || !plan.detail->emulable) return std::nullopt;
  const Detail& d = *plan.detail;
  if (d.op != Detail::Op::Jmp && d.op != Detail::Op::Jcc && d.op != Detail::Op::Call) return std::nullopt;
  if (d.src.kind != Detail::Operand::Kind::Imm) return std::nullopt;
  return d.src.value;
}

}  // namespace

std::vector<uint8_t> jump_rel32(uint64_t from, uint64_t to) {
  const int64_t rel = static_cast<int64_t>(to - (from + 5));
  if (!rel32(rel)) return {};
  std::vector<uint8_t> out{0xe9};
  put32(out, static_cast<int32_t>(rel));
  return out;
}

uint64_t Prologue::to_copy(uint64_t pc) const {
  for (const Boundary& b : boundaries)
    if (pc == patch + b.original) return slot + b.copy;
  return 0;
}

uint64_t Prologue::to_original(uint64_t pc) const {
  for (const Boundary& b : boundaries)
    if (pc == slot + b.copy) return patch + b.original;
  return 0;
}

std::variant<Prologue, std::string> relocate_prologue(uint64_t entry, std::span<const uint8_t> function,
                                                      uint64_t slot) {
  Prologue p;
  p.entry = entry;
  p.patch = entry;
  p.slot = slot;
  size_t at = 0;
  // An endbr64 stays where it is: indirect calls must still land on one.
  if (function.size() >= 4 && std::equal(std::begin(kEndbr64), std::end(kEndbr64), function.begin())) {
    at = 4;
    p.patch = entry + 4;
  }
  StepPlanner planner;
  bool ended = false;  // an unconditional jmp was displaced: nothing after it is ours
  while (at - (p.patch - entry) < kHookJumpSize) {
    if (ended) return std::string("the function is shorter than a jump");
    if (at >= function.size()) return std::string("the function is shorter than a jump");
    const uint64_t pc = entry + at;
    StepPlan plan = planner.plan(pc, function.subspan(at));
    if (plan.length == 0 || at + plan.length > function.size())
      return fmt::format("undecodable instruction at +{:#x}", at);
    const Detail& d = *plan.detail;
    p.boundaries.push_back({static_cast<uint8_t>(pc - p.patch), static_cast<uint16_t>(p.code.size())});
    const uint64_t here = slot + p.code.size();
    if (auto target = branch_target(plan); target && d.op == Detail::Op::Call) {
      // The callee must return to the original code after the call (its unwind info is
      // there, and so is the rest of the function): push that address, then jump.
      //   push %rax; movabs $return, %rax; xchg %rax, (%rsp); jmp target
      // So the call ends what is displaced; a return into the overwritten bytes is refused.
      if (at + plan.length - (p.patch - entry) < kHookJumpSize)
        return fmt::format("'{}' in the prologue would return into the patched bytes", plan.text);
      const uint64_t ret = pc + plan.length;
      p.code.push_back(0x50);
      p.code.insert(p.code.end(), {0x48, 0xb8});
      for (int i = 0; i < 8; ++i) p.code.push_back(static_cast<uint8_t>(ret >> (8 * i)));
      p.code.insert(p.code.end(), {0x48, 0x87, 0x04, 0x24});
      auto jmp = jump_rel32(slot + p.code.size(), *target);
      if (jmp.empty()) return fmt::format("'{}' cannot reach its target from the copy", plan.text);
      p.code.insert(p.code.end(), jmp.begin(), jmp.end());
      ended = true;
    } else if (target) {
      if (d.op == Detail::Op::Jmp) {
        auto jmp = jump_rel32(here, *target);
        if (jmp.empty()) return fmt::format("'{}' cannot reach its target from the copy", plan.text);
        p.code.insert(p.code.end(), jmp.begin(), jmp.end());
        ended = true;
      } else if (static_cast<unsigned>(d.cond) <= static_cast<unsigned>(Detail::Cond::G)) {
        // Cond's first sixteen values are the x86 condition codes in encoding order.
        const int64_t rel = static_cast<int64_t>(*target - (here + 6));
        if (!rel32(rel)) return fmt::format("'{}' cannot reach its target from the copy", plan.text);
        p.code.push_back(0x0f);
        p.code.push_back(static_cast<uint8_t>(0x80 + static_cast<unsigned>(d.cond)));
        put32(p.code, static_cast<int32_t>(rel));
      } else {
        return fmt::format("'{}' in the prologue cannot be relocated", plan.text);
      }
    } else if (d.relocatable) {
      const size_t start = p.code.size();
      p.code.insert(p.code.end(), d.bytes.begin(), d.bytes.begin() + d.length);
      if (d.disp_pos) {
        const int64_t disp = static_cast<int64_t>(d.riprel_target - (here + d.length));
        if (!rel32(disp)) return fmt::format("'{}' cannot reach its operand from the copy", plan.text);
        const int32_t disp32 = static_cast<int32_t>(disp);
        std::memcpy(p.code.data() + start + d.disp_pos, &disp32, 4);
      }
    } else if (plan.length == 2 && function[at] == 0x0f && function[at + 1] == 0x05) {
      p.code.push_back(0x0f);  // syscall
      p.code.push_back(0x05);
    } else {
      return fmt::format("'{}' in the prologue cannot be relocated", plan.text);
    }
    at += plan.length;
  }
  p.length = static_cast<uint8_t>(entry + at - p.patch);
  p.boundaries.push_back({p.length, static_cast<uint16_t>(p.code.size())});
  if (!ended) {
    auto back = jump_rel32(slot + p.code.size(), entry + at);
    if (back.empty()) return std::string("the copy is too far from the function");
    p.code.insert(p.code.end(), back.begin(), back.end());
  }
  if (p.code.size() > kMaxPrologueCode) return std::string("the relocated prologue is too long");

  // No branch of the function may land inside what the jump overwrites.
  const size_t scan = std::min(function.size(), kMaxScan);
  for (size_t off = 0; off < scan;) {
    StepPlan plan = planner.plan(entry + off, function.subspan(off, scan - off));
    if (plan.length == 0) {
      ++off;
      continue;
    }
    if (auto target = branch_target(plan); target && p.in_patch(*target))
      return fmt::format("'{}' at +{:#x} branches into the bytes the hook overwrites", plan.text, off);
    off += plan.length;
  }
  return p;
}

}  // namespace ptmem::arch
