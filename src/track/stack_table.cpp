#include "ptmem/track/stack_table.hpp"

#include <algorithm>
#include <limits>

#include <absl/container/flat_hash_set.h>
#include <absl/hash/hash.h>

namespace ptmem::track {
namespace {

// What intern() looks up before an id exists: the set is keyed by StackId but also
// accepts a (pcs, generation) view (heterogeneous lookup), so no temporary copy is made.
struct StackView {
  std::span<const uint64_t> pcs;
  uint64_t generation;
};

size_t hash_view(const StackView& v) {
  return absl::HashOf(absl::Span<const uint64_t>(v.pcs.data(), v.pcs.size()), v.generation);
}

}  // namespace

struct StackTable::Impl {
  // Stack id N (1-based) owns pcs[offsets[N-1], offsets[N]) and generations[N-1].
  std::vector<uint64_t> pcs;
  std::vector<uint32_t> offsets{0};
  std::vector<uint64_t> generations;

  StackView view(StackId id) const {
    uint32_t begin = offsets[id - 1], end = offsets[id];
    return {std::span<const uint64_t>(pcs.data() + begin, end - begin), generations[id - 1]};
  }

  struct Hash {
    using is_transparent = void;
    const Impl* impl;
    size_t operator()(StackId id) const { return hash_view(impl->view(id)); }
    size_t operator()(const StackView& v) const { return hash_view(v); }
  };
  struct Eq {
    using is_transparent = void;
    const Impl* impl;
    static bool same(const StackView& a, const StackView& b) {
      return a.generation == b.generation && a.pcs.size() == b.pcs.size() &&
             std::equal(a.pcs.begin(), a.pcs.end(), b.pcs.begin());
    }
    bool operator()(StackId a, StackId b) const { return a == b; }
    bool operator()(StackId a, const StackView& b) const { return same(impl->view(a), b); }
    bool operator()(const StackView& a, StackId b) const { return same(a, impl->view(b)); }
  };

  absl::flat_hash_set<StackId, Hash, Eq> ids{0, Hash{this}, Eq{this}};
};

StackTable::StackTable() : impl_(std::make_unique<Impl>()) {}
StackTable::~StackTable() = default;
StackTable::StackTable(StackTable&&) noexcept = default;
StackTable& StackTable::operator=(StackTable&&) noexcept = default;

StackId StackTable::intern(std::span<const uint64_t> pcs, uint64_t module_generation) {
  if (pcs.empty()) return kNoStack;
  StackView key{pcs, module_generation};
  auto it = impl_->ids.find(key);
  if (it != impl_->ids.end()) return *it;

  constexpr uint64_t kMax = std::numeric_limits<uint32_t>::max();
  if (impl_->generations.size() >= kMax - 1 || impl_->pcs.size() + pcs.size() > kMax)
    return kNoStack;
  impl_->pcs.insert(impl_->pcs.end(), pcs.begin(), pcs.end());
  impl_->offsets.push_back(static_cast<uint32_t>(impl_->pcs.size()));
  impl_->generations.push_back(module_generation);
  auto id = static_cast<StackId>(impl_->generations.size());
  impl_->ids.insert(id);
  return id;
}

StackTable::Stack StackTable::get(StackId id) const {
  if (id == kNoStack || id > impl_->generations.size()) return {};
  auto v = impl_->view(id);
  return {v.pcs, v.generation};
}

size_t StackTable::size() const { return impl_->generations.size(); }

size_t StackTable::memory_usage() const {
  const Impl& i = *impl_;
  // A flat_hash_set slot is the key plus one control byte; the control array also carries
  // a group's worth of cloned bytes.
  size_t set_bytes = i.ids.capacity() ? i.ids.capacity() * (sizeof(StackId) + 1) + 16 : 0;
  return sizeof(Impl) + i.pcs.capacity() * sizeof(uint64_t) +
         i.offsets.capacity() * sizeof(uint32_t) + i.generations.capacity() * sizeof(uint64_t) +
         set_bytes;
}

}  // namespace ptmem::track
