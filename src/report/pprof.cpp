// pprof's profile: leaked and allocated memory per stack, for `pprof`, speedscope,
// Pyroscope and the other viewers of profile.proto.  Sample values, in this order:
// leaked_bytes, leaked_blocks, allocated_bytes, allocated_blocks; a leak site is a sample
// with its allocated values 0 and an allocating site (Report::allocated) one with its
// leaked values 0, so each sample type sums to the report's totals.  Every sample has a
// numeric label "pid" (children of --follow-forks are samples of the same profile) and a
// leak's a label "kind".
#include <map>
#include <stdexcept>
#include <zlib.h>

#include <fmt/format.h>

#include "format_util.hpp"
#include "profile.pb.h"
#include "ptmem/report/formats.hpp"
#include "ptmem/version.hpp"

namespace ptmem::report {
namespace {

namespace pb = perftools::profiles;

class ProfileBuilder {
 public:
  ProfileBuilder() {
    str("");  // string_table[0] is "" by the format's rule
    for (auto [type, unit] : {std::pair{"leaked_bytes", "bytes"}, {"leaked_blocks", "count"},
                              {"allocated_bytes", "bytes"}, {"allocated_blocks", "count"}}) {
      pb::ValueType* vt = profile_.add_sample_type();
      vt->set_type(str(type));
      vt->set_unit(str(unit));
    }
    profile_.set_default_sample_type(str("leaked_bytes"));
    profile_.add_comment(str(fmt::format("ptmem {}", kVersion)));
  }

  void add(const Leak& leak, pid_t pid, bool leaked) {
    pb::Sample* s = profile_.add_sample();
    // A run of frames sharing one pc, inlined ones first, is one location.
    for (size_t i = 0; i < leak.stack.size();) {
      size_t end = i;
      while (end + 1 < leak.stack.size() && leak.stack[end].inlined && leak.stack[end + 1].address == leak.stack[i].address)
        ++end;
      s->add_location_id(location(leak.stack, i, end + 1));
      i = end + 1;
    }
    int64_t bytes = static_cast<int64_t>(leak.bytes), blocks = static_cast<int64_t>(leak.blocks);
    for (int64_t v : {leaked ? bytes : 0, leaked ? blocks : 0, leaked ? 0 : bytes, leaked ? 0 : blocks}) s->add_value(v);
    pb::Label* l = s->add_label();
    l->set_key(str("pid"));
    l->set_num(pid);
    if (leaked) {
      l = s->add_label();
      l->set_key(str("kind"));
      l->set_str(str(leak.kind));
    }
  }

  const pb::Profile& profile() const { return profile_; }

 private:
  pb::Profile profile_;
  std::map<std::string, int64_t> strings_;
  std::map<std::string, uint64_t> mappings_;                    // by module path
  std::map<std::pair<uint64_t, std::string>, uint64_t> locations_;  // by pc and module
  std::map<std::tuple<std::string, std::string, std::string>, uint64_t> functions_;

  int64_t str(const std::string& s) {
    auto [it, inserted] = strings_.try_emplace(s, profile_.string_table_size());
    if (inserted) profile_.add_string_table(s);
    return it->second;
  }

  // The module's mapping, grown to cover |f|: ptmem knows each module's load address
  // (pc - module_offset) but not its size, so the mapping spans the pcs seen in it.
  uint64_t mapping(const Frame& f) {
    if (f.module.empty()) return 0;
    uint64_t base = f.address - f.module_offset;
    auto [it, inserted] = mappings_.try_emplace(f.module, profile_.mapping_size() + 1);
    if (inserted) {
      pb::Mapping* m = profile_.add_mapping();
      m->set_id(it->second);
      m->set_memory_start(base);
      m->set_memory_limit(f.address + 1);
      m->set_filename(str(f.module));
    }
    pb::Mapping* m = profile_.mutable_mapping(static_cast<int>(it->second - 1));
    m->set_memory_start(std::min(m->memory_start(), base));
    m->set_memory_limit(std::max(m->memory_limit(), f.address + 1));
    if (!f.function.empty()) m->set_has_functions(true);
    if (!f.file.empty()) m->set_has_filenames(true);
    if (f.line > 0) m->set_has_line_numbers(true);
    if (f.inlined) m->set_has_inline_frames(true);
    return it->second;
  }

  uint64_t function(const Frame& f) {
    std::string name = detail::frame_name(f);
    auto [it, inserted] = functions_.try_emplace({name, f.file, f.module}, profile_.function_size() + 1);
    if (inserted) {
      pb::Function* fn = profile_.add_function();
      fn->set_id(it->second);
      fn->set_name(str(name));
      fn->set_system_name(str(name));
      fn->set_filename(str(f.file));
    }
    return it->second;
  }

  // Frames [begin, end) of |stack|: one pc, innermost first, as pprof orders Location.line.
  uint64_t location(const std::vector<Frame>& stack, size_t begin, size_t end) {
    const Frame& real = stack[end - 1];
    auto [it, inserted] = locations_.try_emplace({real.address, real.module}, profile_.location_size() + 1);
    if (!inserted) return it->second;
    pb::Location* loc = profile_.add_location();
    loc->set_id(it->second);
    loc->set_address(real.address);
    loc->set_mapping_id(mapping(real));
    for (size_t i = begin; i < end; ++i) {
      pb::Line* line = loc->add_line();
      line->set_function_id(function(stack[i]));
      line->set_line(stack[i].line);
      line->set_column(stack[i].column);
      if (i + 1 < end) mapping(stack[i]);  // its debug info flags count too
    }
    return it->second;
  }
};

std::string gzip(const std::string& data) {
  z_stream z{};
  if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16 /* gzip header */, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("pprof: zlib's deflateInit2 failed");
  std::string out(deflateBound(&z, data.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) throw std::runtime_error("pprof: zlib's deflate failed");
  return out;
}

}  // namespace

std::string to_pprof(const Report& report) {
  ProfileBuilder b;
  for (const Report* r : detail::processes(report)) {
    for (const Leak& l : r->leaks) b.add(l, r->target.pid, true);
    for (const Leak& l : r->allocated) b.add(l, r->target.pid, false);
  }
  std::string bytes;
  if (!b.profile().SerializeToString(&bytes)) throw std::runtime_error("pprof: the profile does not serialize");
  return gzip(bytes);
}

}  // namespace ptmem::report
