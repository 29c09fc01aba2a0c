// StepPlanner: decodes the original instruction under a breakpoint once (Capstone, detail
// on) and decides how threads get past it: emulated in the tracer, or executed displaced
// in a scratch slot.  Also builds the displaced code for a given slot.
#include "ptmem/arch/step_over.hpp"

#include <capstone/capstone.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "step_detail.hpp"

namespace ptmem::arch {
namespace {

using Detail = StepPlan::Detail;
using Operand = Detail::Operand;

/// Capstone register id -> GPR slice.  Anything not here (segment, rip, vector...) makes
/// an instruction non-emulable.
std::optional<GprRef> map_gpr(unsigned reg) {
  struct Entry {
    x86_reg id;
    GprRef ref;
  };
  static constexpr Entry kTable[] = {
      {X86_REG_RAX, {0, 8, 0}},  {X86_REG_EAX, {0, 4, 0}},  {X86_REG_AX, {0, 2, 0}},
      {X86_REG_AL, {0, 1, 0}},   {X86_REG_AH, {0, 1, 8}},   {X86_REG_RCX, {1, 8, 0}},
      {X86_REG_ECX, {1, 4, 0}},  {X86_REG_CX, {1, 2, 0}},   {X86_REG_CL, {1, 1, 0}},
      {X86_REG_CH, {1, 1, 8}},   {X86_REG_RDX, {2, 8, 0}},  {X86_REG_EDX, {2, 4, 0}},
      {X86_REG_DX, {2, 2, 0}},   {X86_REG_DL, {2, 1, 0}},   {X86_REG_DH, {2, 1, 8}},
      {X86_REG_RBX, {3, 8, 0}},  {X86_REG_EBX, {3, 4, 0}},  {X86_REG_BX, {3, 2, 0}},
      {X86_REG_BL, {3, 1, 0}},   {X86_REG_BH, {3, 1, 8}},   {X86_REG_RSP, {4, 8, 0}},
      {X86_REG_ESP, {4, 4, 0}},  {X86_REG_SP, {4, 2, 0}},   {X86_REG_SPL, {4, 1, 0}},
      {X86_REG_RBP, {5, 8, 0}},  {X86_REG_EBP, {5, 4, 0}},  {X86_REG_BP, {5, 2, 0}},
      {X86_REG_BPL, {5, 1, 0}},  {X86_REG_RSI, {6, 8, 0}},  {X86_REG_ESI, {6, 4, 0}},
      {X86_REG_SI, {6, 2, 0}},   {X86_REG_SIL, {6, 1, 0}},  {X86_REG_RDI, {7, 8, 0}},
      {X86_REG_EDI, {7, 4, 0}},  {X86_REG_DI, {7, 2, 0}},   {X86_REG_DIL, {7, 1, 0}},
      {X86_REG_R8, {8, 8, 0}},   {X86_REG_R8D, {8, 4, 0}},  {X86_REG_R8W, {8, 2, 0}},
      {X86_REG_R8B, {8, 1, 0}},  {X86_REG_R9, {9, 8, 0}},   {X86_REG_R9D, {9, 4, 0}},
      {X86_REG_R9W, {9, 2, 0}},  {X86_REG_R9B, {9, 1, 0}},  {X86_REG_R10, {10, 8, 0}},
      {X86_REG_R10D, {10, 4, 0}}, {X86_REG_R10W, {10, 2, 0}}, {X86_REG_R10B, {10, 1, 0}},
      {X86_REG_R11, {11, 8, 0}}, {X86_REG_R11D, {11, 4, 0}}, {X86_REG_R11W, {11, 2, 0}},
      {X86_REG_R11B, {11, 1, 0}}, {X86_REG_R12, {12, 8, 0}}, {X86_REG_R12D, {12, 4, 0}},
      {X86_REG_R12W, {12, 2, 0}}, {X86_REG_R12B, {12, 1, 0}}, {X86_REG_R13, {13, 8, 0}},
      {X86_REG_R13D, {13, 4, 0}}, {X86_REG_R13W, {13, 2, 0}}, {X86_REG_R13B, {13, 1, 0}},
      {X86_REG_R14, {14, 8, 0}}, {X86_REG_R14D, {14, 4, 0}}, {X86_REG_R14W, {14, 2, 0}},
      {X86_REG_R14B, {14, 1, 0}}, {X86_REG_R15, {15, 8, 0}}, {X86_REG_R15D, {15, 4, 0}},
      {X86_REG_R15W, {15, 2, 0}}, {X86_REG_R15B, {15, 1, 0}},
  };
  for (const Entry& e : kTable)
    if (e.id == reg) return e.ref;
  return std::nullopt;
}

uint64_t width_mask(unsigned width) {
  return width >= 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * width)) - 1;
}

bool has_group(const cs_insn& insn, uint8_t group) {
  const cs_detail& d = *insn.detail;
  return std::find(d.groups, d.groups + d.groups_count, group) != d.groups + d.groups_count;
}

bool is_fs_or_gs(unsigned seg) { return seg == X86_REG_FS || seg == X86_REG_GS; }

/// Capstone operand -> our operand, or nullopt if the emulator cannot evaluate it.
/// |insn_end| = address + length (what rip is while the instruction executes).
std::optional<Operand> convert(const cs_x86_op& op, uint64_t insn_end) {
  Operand out;
  out.width = op.size;
  if (out.width != 1 && out.width != 2 && out.width != 4 && out.width != 8) return std::nullopt;
  switch (op.type) {
    case X86_OP_REG: {
      auto ref = map_gpr(op.reg);
      if (!ref || ref->width != out.width) return std::nullopt;
      out.kind = Operand::Kind::Reg;
      out.reg = *ref;
      return out;
    }
    case X86_OP_IMM:
      out.kind = Operand::Kind::Imm;
      // Capstone gives the immediate sign-extended to 64 bits when the CPU sign-extends
      // it (e.g. `mov rax, -1` from c7 /0); masking to the operand width is then exact.
      out.value = static_cast<uint64_t>(op.imm) & width_mask(out.width);
      return out;
    case X86_OP_MEM: {
      // fs/gs change the base address; the tracer would need fs_base/gs_base semantics.
      if (is_fs_or_gs(op.mem.segment)) return std::nullopt;
      if (op.mem.base == X86_REG_RIP) {
        if (op.mem.index != X86_REG_INVALID) return std::nullopt;
        out.kind = Operand::Kind::RipMem;
        out.value = insn_end + static_cast<uint64_t>(op.mem.disp);
        return out;
      }
      out.kind = Operand::Kind::AddrMem;
      if (op.mem.base != X86_REG_INVALID) {
        auto ref = map_gpr(op.mem.base);
        if (!ref || ref->width != 8) return std::nullopt;
        out.has_base = true;
        out.base = *ref;
      }
      if (op.mem.index != X86_REG_INVALID) {
        auto ref = map_gpr(op.mem.index);
        if (!ref || ref->width != 8) return std::nullopt;
        out.has_index = true;
        out.index = *ref;
      }
      out.scale = static_cast<uint8_t>(op.mem.scale);
      out.disp = op.mem.disp;
      return out;
    }
    default:
      return std::nullopt;
  }
}

std::optional<Detail::Cond> branch_cond(unsigned id) {
  using C = Detail::Cond;
  switch (id) {
    case X86_INS_JO: return C::O;
    case X86_INS_JNO: return C::NO;
    case X86_INS_JB: return C::B;
    case X86_INS_JAE: return C::AE;
    case X86_INS_JE: return C::E;
    case X86_INS_JNE: return C::NE;
    case X86_INS_JBE: return C::BE;
    case X86_INS_JA: return C::A;
    case X86_INS_JS: return C::S;
    case X86_INS_JNS: return C::NS;
    case X86_INS_JP: return C::P;
    case X86_INS_JNP: return C::NP;
    case X86_INS_JL: return C::L;
    case X86_INS_JGE: return C::GE;
    case X86_INS_JLE: return C::LE;
    case X86_INS_JG: return C::G;
    case X86_INS_JRCXZ: return C::Rcxz;
    case X86_INS_JECXZ: return C::Ecxz;
    case X86_INS_LOOP: return C::Loop;
    case X86_INS_LOOPE: return C::LoopE;
    case X86_INS_LOOPNE: return C::LoopNE;
    default: return std::nullopt;
  }
}

std::optional<Detail::Alu> alu_kind(unsigned id) {
  using A = Detail::Alu;
  switch (id) {
    case X86_INS_ADD: return A::Add;
    case X86_INS_SUB: return A::Sub;
    case X86_INS_CMP: return A::Cmp;
    case X86_INS_AND: return A::And;
    case X86_INS_OR: return A::Or;
    case X86_INS_XOR: return A::Xor;
    case X86_INS_TEST: return A::Test;
    default: return std::nullopt;
  }
}

/// Fills the emulation half of |d|.  Only forms whose every effect we reproduce exactly
/// (registers, status flags, the stack) and whose memory reads cannot fault in a way the
/// program would notice: the stack, and RIP-relative data of the module itself.  A load
/// through an arbitrary pointer (cmpb $0,(%rdi)) is left to displaced stepping, where a bad
/// pointer faults natively.
bool classify_emulation(const cs_insn& insn, Detail& d) {
  const cs_x86& x = insn.detail->x86;
  const uint64_t end = insn.address + insn.size;
  using Op = Detail::Op;
  using K = Operand::Kind;

  if (insn.id == X86_INS_NOP || insn.id == X86_INS_ENDBR64 || insn.id == X86_INS_ENDBR32) {
    d.op = Op::Nop;  // multi-byte nops name a memory operand but never access it
    return true;
  }
  // Prefixes that change what we would have to compute: lock, address size (eip-relative,
  // 32-bit address wrap), operand size on branches/stack ops (16-bit rip/rsp updates).
  // (jecxz needs 0x67 in 64-bit mode: it only selects ecx as the count, handled below.)
  if (x.prefix[0] == 0xf0) return false;
  if (x.prefix[3] == 0x67 && insn.id != X86_INS_JECXZ) return false;
  const bool opsize16 = x.prefix[2] == 0x66;

  std::optional<Operand> ops[2];
  if (x.op_count > 2) return false;
  for (int i = 0; i < x.op_count; ++i) {
    ops[i] = convert(x.operands[i], end);
    if (!ops[i]) return false;
  }

  switch (insn.id) {
    case X86_INS_PUSH:
      if (x.op_count != 1 || opsize16 || ops[0]->width != 8) return false;
      if (ops[0]->kind != K::Reg && ops[0]->kind != K::Imm) return false;
      d.op = Op::Push;
      d.src = *ops[0];
      return true;
    case X86_INS_POP:
      if (x.op_count != 1 || opsize16 || ops[0]->kind != K::Reg || ops[0]->width != 8)
        return false;
      d.op = Op::Pop;
      d.dst = *ops[0];
      return true;
    case X86_INS_MOV:
    case X86_INS_MOVABS:
      if (x.op_count != 2 || ops[0]->kind != K::Reg) return false;
      if (ops[1]->kind != K::Reg && ops[1]->kind != K::Imm) return false;
      if (ops[0]->width != ops[1]->width) return false;
      d.op = Op::Mov;
      d.dst = *ops[0];
      d.src = *ops[1];
      return true;
    case X86_INS_LEA:
      if (x.op_count != 2 || ops[0]->kind != K::Reg || ops[0]->width < 4) return false;
      if (ops[1]->kind != K::RipMem && ops[1]->kind != K::AddrMem) return false;
      d.op = Op::Lea;
      d.dst = *ops[0];
      d.src = *ops[1];
      return true;
    case X86_INS_JMP:
    case X86_INS_CALL:
      if (x.op_count != 1 || opsize16 || ops[0]->width != 8) return false;
      // jmp/call rel (Capstone resolved the target), *reg, *mem (GOT/PLT style).
      d.op = insn.id == X86_INS_JMP ? Op::Jmp : Op::Call;
      d.src = *ops[0];
      return true;
    case X86_INS_RET:
      if (opsize16 || x.op_count > 1) return false;
      if (x.op_count == 1) {
        if (ops[0]->kind != K::Imm) return false;
        d.ret_pop = static_cast<uint16_t>(ops[0]->value);
      }
      d.op = Op::Ret;
      return true;
    default:
      break;
  }
  if (auto cond = branch_cond(insn.id)) {
    if (x.op_count != 1 || opsize16 || ops[0]->kind != K::Imm) return false;
    d.op = Op::Jcc;
    d.cond = *cond;
    d.src = *ops[0];
    d.src.value = static_cast<uint64_t>(x.operands[0].imm);
    return true;
  }
  if (auto alu = alu_kind(insn.id)) {
    if (x.op_count != 2 || ops[0]->width != ops[1]->width) return false;
    const bool writes = *alu != Detail::Alu::Cmp && *alu != Detail::Alu::Test;
    // Destination: a register; or RIP-relative memory for the flag-only cmp/test.
    if (ops[0]->kind == K::RipMem && writes) return false;
    if (ops[0]->kind != K::Reg && ops[0]->kind != K::RipMem) return false;
    // Source: register or immediate; RIP-relative memory again only for cmp/test.
    if (ops[1]->kind == K::RipMem && writes) return false;
    if (ops[1]->kind != K::Reg && ops[1]->kind != K::Imm && ops[1]->kind != K::RipMem)
      return false;
    if (ops[0]->kind == K::RipMem && ops[1]->kind == K::RipMem) return false;
    d.op = Op::Alu;
    d.alu = *alu;
    d.dst = *ops[0];
    d.src = *ops[1];
    return true;
  }
  return false;
}

/// Fills the relocation half of |d|: can the bytes run elsewhere with only the disp32 of
/// a RIP-relative operand adjusted?  Anything that reads rip otherwise (branches, calls,
/// returns) or that traps/enters the kernel (int3, syscall: signal and restart paths would
/// see the slot address) stays in place.
bool classify_relocation(csh handle, const cs_insn& insn, std::span<const uint8_t> code,
                         Detail& d) {
  for (uint8_t g : {X86_GRP_JUMP, X86_GRP_CALL, X86_GRP_RET, X86_GRP_INT, X86_GRP_IRET,
                    X86_GRP_PRIVILEGE, X86_GRP_BRANCH_RELATIVE})
    if (has_group(insn, g)) return false;
  switch (insn.id) {
    case X86_INS_SYSCALL: case X86_INS_SYSENTER: case X86_INS_SYSEXIT: case X86_INS_SYSRET:
    case X86_INS_INT: case X86_INS_INT1: case X86_INS_INT3: case X86_INS_INTO:
    case X86_INS_UD0: case X86_INS_UD2: case X86_INS_UD2B: case X86_INS_HLT:
    case X86_INS_XBEGIN: case X86_INS_XABORT: case X86_INS_XEND:
    case X86_INS_JMP: case X86_INS_LJMP: case X86_INS_CALL: case X86_INS_LCALL:
    case X86_INS_RET: case X86_INS_RETF: case X86_INS_RETFQ:
    case X86_INS_IRET: case X86_INS_IRETD: case X86_INS_IRETQ:
    case X86_INS_LOOP: case X86_INS_LOOPE: case X86_INS_LOOPNE:
    case X86_INS_JRCXZ: case X86_INS_JECXZ: case X86_INS_JCXZ:
      return false;
    default:
      break;
  }
  if (branch_cond(insn.id)) return false;
  if (insn.size > code.size() || insn.size > d.bytes.size()) return false;

  const cs_x86& x = insn.detail->x86;
  bool riprel = false;
  for (int i = 0; i < x.op_count; ++i) {
    const cs_x86_op& op = x.operands[i];
    if (op.type != X86_OP_MEM) continue;
    if (op.mem.base == X86_REG_EIP || op.mem.index == X86_REG_RIP ||
        op.mem.index == X86_REG_EIP)
      return false;  // eip-relative (0x67) would also need 32-bit wrap-around: not worth it
    if (op.mem.base == X86_REG_RIP) {
      if (riprel) return false;
      riprel = true;
      // RIP-relative is always ModRM mod=00 rm=101 followed directly by disp32 (Intel SDM
      // vol. 2, 2.2.1.6); check that rather than trust Capstone's disp_offset/disp_size,
      // which are wrong for VEX forms in 4.0.2.
      const unsigned modrm = x.encoding.modrm_offset;
      if (modrm == 0 || modrm + 5u > insn.size) return false;
      if ((code[modrm] & 0xc7) != 0x05) return false;
      int32_t disp;
      std::memcpy(&disp, code.data() + modrm + 1, 4);
      if (disp != op.mem.disp) return false;
      d.disp_pos = static_cast<uint8_t>(modrm + 1);
      d.riprel_target = insn.address + insn.size + static_cast<uint64_t>(op.mem.disp);
    }
  }
  // Belt and braces: any other implicit use of rip (Capstone's register lists) means the
  // instruction's behaviour depends on where it runs.
  cs_regs read, written;
  uint8_t nread = 0, nwritten = 0;
  if (cs_regs_access(handle, &insn, read, &nread, written, &nwritten) != CS_ERR_OK) return false;
  for (uint8_t i = 0; i < nwritten; ++i)
    if (written[i] == X86_REG_RIP || written[i] == X86_REG_EIP) return false;
  for (uint8_t i = 0; i < nread; ++i)
    if ((read[i] == X86_REG_RIP || read[i] == X86_REG_EIP) && !riprel) return false;

  d.relocatable = true;
  d.length = static_cast<uint8_t>(insn.size);
  std::copy_n(code.begin(), insn.size, d.bytes.begin());
  return true;
}

void put_le(std::vector<uint8_t>& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

bool fits_rel32(int64_t v) {
  return v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max();
}

}  // namespace

struct StepPlanner::Impl {
  csh handle = 0;
  cs_insn* insn = nullptr;
  bool ok = false;
};

StepPlanner::StepPlanner() : impl_(std::make_unique<Impl>()) {
  if (cs_open(CS_ARCH_X86, CS_MODE_64, &impl_->handle) != CS_ERR_OK) return;
  cs_option(impl_->handle, CS_OPT_DETAIL, CS_OPT_ON);
  impl_->insn = cs_malloc(impl_->handle);
  impl_->ok = impl_->insn != nullptr;
}

StepPlanner::~StepPlanner() {
  if (impl_->insn) cs_free(impl_->insn, 1);
  if (impl_->handle) cs_close(&impl_->handle);
}

StepPlan StepPlanner::plan(uint64_t address, std::span<const uint8_t> code) {
  StepPlan plan;
  plan.address = address;
  if (!impl_->ok || code.empty()) {
    plan.text = "(no decoder)";
    return plan;
  }
  const uint8_t* p = code.data();
  size_t size = std::min<size_t>(code.size(), 16);
  uint64_t addr = address;
  cs_insn& insn = *impl_->insn;
  if (!cs_disasm_iter(impl_->handle, &p, &size, &addr, &insn)) {
    plan.text = "(bad)";
    return plan;
  }
  plan.length = static_cast<uint8_t>(insn.size);
  plan.text = insn.mnemonic;
  if (insn.op_str[0] != '\0') {
    plan.text += ' ';
    plan.text += insn.op_str;
  }

  auto detail = std::make_shared<Detail>();
  detail->next = address + insn.size;
  detail->emulable = classify_emulation(insn, *detail);
  classify_relocation(impl_->handle, insn, code, *detail);
  plan.displaceable = detail->relocatable;
  if (detail->emulable)
    plan.kind = StepPlan::Kind::Emulate;
  else if (detail->relocatable)
    plan.kind = StepPlan::Kind::Displaced;
  plan.detail = std::move(detail);
  return plan;
}

std::optional<std::vector<uint8_t>> build_displaced(const StepPlan& plan, uint64_t slot) {
  if (!plan.detail || !plan.detail->relocatable) return std::nullopt;
  const Detail& d = *plan.detail;
  std::vector<uint8_t> out(d.bytes.begin(), d.bytes.begin() + d.length);
  out.reserve(kMaxDisplacedSize);
  if (d.disp_pos != 0) {
    const int64_t disp = static_cast<int64_t>(d.riprel_target - (slot + d.length));
    if (!fits_rel32(disp)) return std::nullopt;
    const int32_t disp32 = static_cast<int32_t>(disp);
    std::memcpy(out.data() + d.disp_pos, &disp32, 4);
  }
  // Jump back to the instruction after the original one.
  const uint64_t back = plan.address + d.length;
  const uint64_t jmp_at = slot + d.length;
  const int64_t rel = static_cast<int64_t>(back - (jmp_at + 5));
  if (fits_rel32(rel)) {
    out.push_back(0xe9);  // jmp rel32
    put_le(out, static_cast<uint64_t>(rel), 4);
  } else {
    // jmp *0(%rip) reads its target from the 8 bytes that follow it; no register needed.
    for (uint8_t b : {0xff, 0x25, 0x00, 0x00, 0x00, 0x00}) out.push_back(b);
    put_le(out, back, 8);
  }
  return out;
}

uint64_t defined_flags(const StepPlan& plan) {
  using namespace rflags;
  if (!plan.detail || !plan.detail->emulable) return 0;
  const Detail& d = *plan.detail;
  if (d.op != Detail::Op::Alu) return 0;
  switch (d.alu) {
    case Detail::Alu::Add:
    case Detail::Alu::Sub:
    case Detail::Alu::Cmp:
      return kStatus;
    default:
      return kStatus & ~kAF;  // logic ops: CF=OF=0, SF ZF PF from the result, AF undefined
  }
}

}  // namespace ptmem::arch
