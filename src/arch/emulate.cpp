// emulate(): runs a planned instruction on saved registers.  Called on every breakpoint
// hit, so it only switches over what plan() precomputed: no decoding, no allocation.
#include <cstring>

#include "ptmem/arch/step_over.hpp"
#include "step_detail.hpp"

namespace ptmem::arch {
namespace {

using Detail = StepPlan::Detail;
using Operand = Detail::Operand;
using Regs = user_regs_struct;

// GPRs in encoding order (GprRef::gpr).  Member pointers keep this free of layout tricks.
constexpr unsigned long long Regs::*kGpr[16] = {
    &Regs::rax, &Regs::rcx, &Regs::rdx, &Regs::rbx, &Regs::rsp, &Regs::rbp,
    &Regs::rsi, &Regs::rdi, &Regs::r8,  &Regs::r9,  &Regs::r10, &Regs::r11,
    &Regs::r12, &Regs::r13, &Regs::r14, &Regs::r15};

constexpr uint64_t width_mask(unsigned width) {
  return width >= 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * width)) - 1;
}

uint64_t read_gpr(const Regs& r, GprRef g) {
  return (static_cast<uint64_t>(r.*kGpr[g.gpr]) >> g.shift) & width_mask(g.width);
}

void write_gpr(Regs& r, GprRef g, uint64_t v) {
  unsigned long long& full = r.*kGpr[g.gpr];
  if (g.width == 8) {
    full = v;
  } else if (g.width == 4) {
    full = v & 0xffffffffu;  // a 32-bit destination zero-extends into the whole register
  } else {                   // 8/16-bit destinations leave the other bits alone
    const uint64_t m = width_mask(g.width) << g.shift;
    full = (full & ~m) | ((v << g.shift) & m);
  }
}

uint64_t address_of(const Regs& r, const Operand& o) {
  if (o.kind == Operand::Kind::RipMem) return o.value;
  uint64_t a = static_cast<uint64_t>(o.disp);
  if (o.has_base) a += read_gpr(r, o.base);
  if (o.has_index) a += read_gpr(r, o.index) * o.scale;
  return a;
}

bool read_mem(MemoryAccess& mem, uint64_t addr, unsigned width, uint64_t& out) {
  uint8_t buf[8] = {};
  if (!mem.read(addr, buf, width)) return false;
  uint64_t v = 0;
  std::memcpy(&v, buf, sizeof v);  // x86 is little-endian: the low |width| bytes
  out = v & width_mask(width);
  return true;
}

bool value_of(const Regs& r, MemoryAccess& mem, const Operand& o, uint64_t& out) {
  switch (o.kind) {
    case Operand::Kind::Reg: out = read_gpr(r, o.reg); return true;
    case Operand::Kind::Imm: out = o.value; return true;
    case Operand::Kind::RipMem:
    case Operand::Kind::AddrMem: return read_mem(mem, address_of(r, o), o.width, out);
    case Operand::Kind::None: break;
  }
  return false;
}

/// ZF, SF, PF of a |width|-byte result (PF: even parity of its low byte).
uint64_t result_flags(uint64_t res, unsigned width) {
  using namespace rflags;
  uint64_t f = 0;
  if (res == 0) f |= kZF;
  if ((res >> (8 * width - 1)) & 1) f |= kSF;
  if (!__builtin_parity(static_cast<unsigned>(res & 0xff))) f |= kPF;
  return f;
}

/// One ALU operation with the status flags the CPU produces (Intel SDM vol. 2 per insn;
/// AF after logic ops is "undefined" there and 0 on the parts we know).
uint64_t alu(Detail::Alu op, uint64_t a, uint64_t b, unsigned width, uint64_t& flags) {
  using namespace rflags;
  const uint64_t m = width_mask(width);
  const unsigned top = 8 * width - 1;
  uint64_t res;
  switch (op) {
    case Detail::Alu::Add:
      res = (a + b) & m;
      flags = result_flags(res, width);
      if (res < a) flags |= kCF;
      if ((((a ^ res) & (b ^ res)) >> top) & 1) flags |= kOF;
      if ((a ^ b ^ res) & 0x10) flags |= kAF;
      return res;
    case Detail::Alu::Sub:
    case Detail::Alu::Cmp:
      res = (a - b) & m;
      flags = result_flags(res, width);
      if (a < b) flags |= kCF;
      if ((((a ^ b) & (a ^ res)) >> top) & 1) flags |= kOF;
      if ((a ^ b ^ res) & 0x10) flags |= kAF;
      return res;
    case Detail::Alu::And:
    case Detail::Alu::Test:
      res = a & b;
      break;
    case Detail::Alu::Or:
      res = a | b;
      break;
    case Detail::Alu::Xor:
      res = a ^ b;
      break;
    default:
      res = 0;
  }
  flags = result_flags(res, width);  // CF = OF = 0
  return res;
}

bool condition(const Detail& d, Regs& r) {
  using namespace rflags;
  const uint64_t f = r.eflags;
  const bool cf = f & kCF, zf = f & kZF, sf = f & kSF, of = f & kOF, pf = f & kPF;
  using C = Detail::Cond;
  switch (d.cond) {
    case C::O: return of;
    case C::NO: return !of;
    case C::B: return cf;
    case C::AE: return !cf;
    case C::E: return zf;
    case C::NE: return !zf;
    case C::BE: return cf || zf;
    case C::A: return !cf && !zf;
    case C::S: return sf;
    case C::NS: return !sf;
    case C::P: return pf;
    case C::NP: return !pf;
    case C::L: return sf != of;
    case C::GE: return sf == of;
    case C::LE: return zf || sf != of;
    case C::G: return !zf && sf == of;
    case C::Rcxz: return r.rcx == 0;
    case C::Ecxz: return (r.rcx & 0xffffffffu) == 0;
    case C::Loop: return --r.rcx != 0;  // loop* decrement rcx without touching flags
    case C::LoopE: return --r.rcx != 0 && zf;
    case C::LoopNE: return --r.rcx != 0 && !zf;
  }
  return false;
}

}  // namespace

bool emulate(const StepPlan& plan, Registers& regs, MemoryAccess& mem) {
  if (plan.kind != StepPlan::Kind::Emulate || !plan.detail || !plan.detail->emulable)
    return false;
  const Detail& d = *plan.detail;
  Regs& r = regs.raw;
  // Every memory access happens before the first register update, so a failed access
  // leaves |regs| exactly as it was.
  switch (d.op) {
    case Detail::Op::Nop:
      break;
    case Detail::Op::Push: {
      uint64_t v;
      value_of(r, mem, d.src, v);  // register or immediate: cannot fail
      if (!mem.write(r.rsp - 8, &v, 8)) return false;
      r.rsp -= 8;
      break;
    }
    case Detail::Op::Pop: {
      uint64_t v;
      if (!read_mem(mem, r.rsp, 8, v)) return false;
      r.rsp += 8;
      write_gpr(r, d.dst.reg, v);  // after the increment: `pop %rsp` loads the value read
      break;
    }
    case Detail::Op::Mov: {
      uint64_t v;
      value_of(r, mem, d.src, v);
      write_gpr(r, d.dst.reg, v);
      break;
    }
    case Detail::Op::Lea:
      write_gpr(r, d.dst.reg, address_of(r, d.src) & width_mask(d.dst.width));
      break;
    case Detail::Op::Alu: {
      uint64_t a, b, flags;
      if (!value_of(r, mem, d.dst, a) || !value_of(r, mem, d.src, b)) return false;
      const uint64_t res = alu(d.alu, a, b, d.dst.width, flags);
      if (d.alu != Detail::Alu::Cmp && d.alu != Detail::Alu::Test) write_gpr(r, d.dst.reg, res);
      r.eflags = (r.eflags & ~rflags::kStatus) | flags;
      break;
    }
    case Detail::Op::Jmp: {
      uint64_t target;
      if (!value_of(r, mem, d.src, target)) return false;
      r.rip = target;
      return true;
    }
    case Detail::Op::Call: {
      uint64_t target;
      if (!value_of(r, mem, d.src, target)) return false;
      const uint64_t ret = d.next;
      if (!mem.write(r.rsp - 8, &ret, 8)) return false;
      r.rsp -= 8;
      r.rip = target;
      return true;
    }
    case Detail::Op::Jcc:
      r.rip = condition(d, r) ? d.src.value : d.next;
      return true;
    case Detail::Op::Ret: {
      uint64_t target;
      if (!read_mem(mem, r.rsp, 8, target)) return false;
      r.rsp += 8 + d.ret_pop;
      r.rip = target;
      return true;
    }
  }
  r.rip = d.next;
  return true;
}

}  // namespace ptmem::arch
