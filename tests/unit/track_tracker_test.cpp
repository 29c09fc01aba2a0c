#include <doctest/doctest.h>

#include <vector>

#include "ptmem/track/tracker.hpp"

using ptmem::proc::FdEntry;
using ptmem::track::Counters;
using ptmem::track::FdOrigin;
using ptmem::track::kNoStack;
using ptmem::track::Tracker;

namespace {

struct Expect {
  uint64_t alloc_calls, free_calls, free_null_calls, realloc_calls, failed_alloc_calls,
      total_allocated_bytes, live_blocks, live_bytes, peak_live_bytes, frees_of_unknown_blocks;
};

void check(const Counters& c, const Expect& e) {
  CHECK(c.alloc_calls == e.alloc_calls);
  CHECK(c.free_calls == e.free_calls);
  CHECK(c.free_null_calls == e.free_null_calls);
  CHECK(c.realloc_calls == e.realloc_calls);
  CHECK(c.failed_alloc_calls == e.failed_alloc_calls);
  CHECK(c.total_allocated_bytes == e.total_allocated_bytes);
  CHECK(c.live_blocks == e.live_blocks);
  CHECK(c.live_bytes == e.live_bytes);
  CHECK(c.peak_live_bytes == e.peak_live_bytes);
  CHECK(c.frees_of_unknown_blocks == e.frees_of_unknown_blocks);
}

std::vector<FdEntry> fds(std::initializer_list<int> numbers) {
  std::vector<FdEntry> out;
  for (int n : numbers) out.push_back(FdEntry{n});
  return out;
}

}  // namespace

TEST_CASE("tracker counters over a scripted allocation sequence") {
  Tracker t;
  //                                 alloc free null realloc failed total live  bytes peak unknown
  t.on_alloc(1, 0x1000, 100, 1);
  check(t.counters(), {1, 0, 0, 0, 0, 100, 1, 100, 100, 0});
  t.on_alloc(1, 0x2000, 50, 1);
  check(t.counters(), {2, 0, 0, 0, 0, 150, 2, 150, 150, 0});
  t.on_free(1, 0x1000);
  check(t.counters(), {2, 1, 0, 0, 0, 150, 1, 50, 150, 0});
  t.on_free_null(1);
  check(t.counters(), {2, 1, 1, 0, 0, 150, 1, 50, 150, 0});

  SUBCASE("realloc variants") {
    // realloc that moves 0x2000 -> 0x3000 and grows to 200 bytes
    t.on_realloc_call(1);
    t.on_realloc(1, 0x2000, 0x3000, 200, 2);
    check(t.counters(), {3, 1, 1, 1, 0, 350, 1, 200, 200, 0});
    CHECK_FALSE(t.allocations().find(0x2000));
    // in place, shrinking: the block now belongs to the realloc's stack
    t.on_realloc_call(1);
    t.on_realloc(1, 0x3000, 0x3000, 20, 3);
    check(t.counters(), {4, 1, 1, 2, 0, 370, 1, 20, 200, 0});
    auto b = t.allocations().find(0x3000);
    REQUIRE(b);
    CHECK(b->size == 20);
    CHECK(b->stack == 3);
    CHECK(b->tid == 1);
    // realloc(NULL, 64) on another thread
    t.on_realloc_call(2);
    t.on_alloc(2, 0x4000, 64, 3);
    check(t.counters(), {5, 1, 1, 3, 0, 434, 2, 84, 200, 0});
    // realloc(p, 0) that frees
    t.on_realloc_call(2);
    t.on_free(2, 0x4000);
    check(t.counters(), {5, 2, 1, 4, 0, 434, 1, 20, 200, 0});
    // failed realloc, failed malloc
    t.on_realloc_call(2);
    t.on_failed_alloc(2);
    t.on_failed_alloc(1);
    check(t.counters(), {5, 2, 1, 5, 2, 434, 1, 20, 200, 0});
    // realloc of a block allocated before attach
    t.on_realloc_call(1);
    t.on_realloc(1, 0x8888, 0x5000, 10, 1);
    check(t.counters(), {6, 2, 1, 6, 2, 444, 2, 30, 200, 1});
    CHECK(t.counters().threads_seen == 2);
  }

  SUBCASE("frees of unknown blocks never crash and are counted apart") {
    t.on_free(3, 0x9999);
    t.on_free(3, 0x9999);
    check(t.counters(), {2, 3, 1, 0, 0, 150, 1, 50, 150, 2});
    CHECK(t.counters().threads_seen == 2);
  }

  SUBCASE("an address returned again while live: its free went unseen") {
    t.on_alloc(1, 0x2000, 70, 4);
    check(t.counters(), {3, 1, 1, 0, 0, 220, 1, 70, 150, 0});
    CHECK(t.counters().unseen_frees == 1);
    CHECK(t.allocations().find(0x2000)->size == 70);
  }

  SUBCASE("exec drops the heap, it does not leak") {
    t.on_alloc(1, 0x6000, 8, 1);
    t.on_exec(1);
    check(t.counters(), {3, 1, 1, 0, 0, 158, 0, 0, 150, 0});
    CHECK(t.counters().exec_dropped_blocks == 2);
    CHECK(t.counters().exec_dropped_bytes == 58);
    CHECK(t.allocations().empty());
    t.on_alloc(1, 0x2000, 5, 1);  // the new image's heap may reuse addresses
    check(t.counters(), {4, 1, 1, 0, 0, 163, 1, 5, 150, 0});
    CHECK(t.counters().unseen_frees == 0);
  }
}

TEST_CASE("tracker fd events") {
  Tracker t;
  std::vector<int> inherited{0, 1, 2, 9};
  t.mark_inherited(inherited);
  CHECK(t.fds().size() == 4);
  CHECK(t.fds().find(9)->origin == FdOrigin::Inherited);

  t.on_fd_open(10, 3, FdOrigin::Pipe, 5);
  t.on_fd_open(10, 4, FdOrigin::Pipe, 5);
  t.on_fd_close(11, 3);  // closed by another thread
  t.on_fd_open(10, 5, FdOrigin::Open, 6);
  CHECK(t.counters().fd_opened == 3);
  CHECK(t.counters().fd_closed == 1);
  // dup2(5, 4): the open fd 4 is closed implicitly
  t.on_fd_open(10, 4, FdOrigin::Dup, 7);
  CHECK(t.counters().fd_opened == 4);
  CHECK(t.counters().fd_closed == 2);
  CHECK(t.fds().find(4)->origin == FdOrigin::Dup);
  CHECK(t.fds().find(4)->stack == 7);
  CHECK(t.fds().find(4)->tid == 10);

  // close_range(4, ~0U) closes 4, 5 and the inherited 9
  t.on_fd_close_range(10, 4, ~0U);
  CHECK(t.counters().fd_closed == 5);
  CHECK(t.fds().size() == 3);
  // closing an fd the table never knew
  t.on_fd_close(10, 77);
  CHECK(t.counters().fd_closed == 6);
  CHECK(t.counters().fd_closes_of_unknown == 1);
  CHECK(t.counters().threads_seen == 2);
  CHECK(t.counters().alloc_calls == 0);
}

TEST_CASE("tracker reconciles its fd table with /proc") {
  Tracker t;
  std::vector<int> inherited{0, 1, 2};
  t.mark_inherited(inherited);
  t.on_fd_open(1, 3, FdOrigin::Socket, 4);
  t.on_fd_open(1, 5, FdOrigin::Open, 4);
  // /proc: 3 is gone (closed through an untraced path), 6 and 7 appeared (opened before
  // attach or untraced), 5 still open.
  auto r = t.reconcile_fds(fds({0, 1, 2, 5, 6, 7}));
  CHECK(r.added == 2);
  CHECK(r.dropped == 1);
  CHECK(t.fds().size() == 6);
  CHECK(t.fds().find(0)->origin == FdOrigin::Inherited);
  CHECK(t.fds().find(2)->origin == FdOrigin::Inherited);
  CHECK_FALSE(t.fds().find(3));
  CHECK(t.fds().find(5)->origin == FdOrigin::Open);
  CHECK(t.fds().find(5)->stack == 4);
  CHECK(t.fds().find(6)->origin == FdOrigin::Unknown);
  CHECK(t.fds().find(6)->stack == kNoStack);
  CHECK(t.counters().fd_found_open == 2);
  CHECK(t.counters().fd_found_closed == 1);
  // The discrepancies are not opens or closes the program was seen making.
  CHECK(t.counters().fd_opened == 2);
  CHECK(t.counters().fd_closed == 0);

  // Reconciling again with the same listing changes nothing.
  r = t.reconcile_fds(fds({0, 1, 2, 5, 6, 7}));
  CHECK(r.added == 0);
  CHECK(r.dropped == 0);
  auto sorted = t.fds().sorted();
  REQUIRE(sorted.size() == 6);
  CHECK(sorted.front().fd == 0);
  CHECK(sorted.back().fd == 7);
}

TEST_CASE("at an exec, the fds gone from /proc are closes by the exec") {
  Tracker t;
  t.on_fd_open(1, 3, FdOrigin::Open, 4);  // close-on-exec
  t.on_fd_open(1, 4, FdOrigin::Open, 5);  // crosses the exec
  auto r = t.reconcile_fds(fds({0, 1, 2, 4}), true);
  CHECK(r.dropped == 1);
  CHECK_FALSE(t.fds().find(3));
  CHECK(t.fds().find(4)->stack == 5);
  CHECK(t.counters().fd_closed == 1);
  CHECK(t.counters().fd_closed_at_exec == 1);
  CHECK(t.counters().fd_found_closed == 0);
}

TEST_CASE("inherited fds found by a first reconciliation are not counted as found open") {
  Tracker t;
  t.reconcile_fds(fds({0, 1, 2, 5}));
  CHECK(t.counters().fd_found_open == 4);
  std::vector<int> inherited{0, 1, 2};
  t.mark_inherited(inherited);
  CHECK(t.counters().fd_found_open == 1);
  CHECK(t.fds().find(1)->origin == FdOrigin::Inherited);
  CHECK(t.fds().find(5)->origin == FdOrigin::Unknown);
  t.mark_inherited(inherited);  // again: nothing more to explain
  CHECK(t.counters().fd_found_open == 1);
}

// The breakpoint engine hears a close's result at its return, and serves threads in its own
// order: thread 20's close(7) has run in the kernel, thread 21's open got 7 again, and
// 21's return is handled before 20's.  The counts must be those of what really happened.
TEST_CASE("tracker: an open heard before the result of the close that freed its number") {
  Tracker t;
  t.on_fd_open(20, 7, FdOrigin::Open, 1);
  t.on_fd_close_begin(20, 7);
  t.on_fd_open(21, 7, FdOrigin::Open, 2);  // proves 20's close done
  CHECK(t.counters().fd_closed == 1);
  CHECK(t.fds().find(7)->tid == 21);
  t.on_fd_close(20, 7);  // its result: already counted, and 21's fd 7 stays open
  CHECK(t.counters().fd_closed == 1);
  CHECK(t.counters().fd_closes_of_unknown == 0);
  REQUIRE(t.fds().find(7) != nullptr);
  CHECK(t.fds().find(7)->tid == 21);
  t.on_fd_close_begin(21, 7);
  t.on_fd_close(21, 7);
  CHECK(t.counters().fd_closed == 2);
  CHECK(t.fds().size() == 0);
  CHECK(t.counters().fd_closes_of_unknown == 0);

  // A close that fails (EBADF) closed nothing; a later open of that number is no proof.
  t.on_fd_open(20, 8, FdOrigin::Open, 1);
  t.on_fd_close_begin(21, 9);
  t.on_fd_close_failed(21, 9);
  t.on_fd_open(22, 9, FdOrigin::Open, 3);
  CHECK(t.counters().fd_closed == 2);
  CHECK(t.fds().size() == 2);
  // A close in progress does not close an fd before its number is given out again.
  t.on_fd_close_begin(20, 8);
  t.on_fd_open(22, 10, FdOrigin::Open, 3);
  CHECK(t.fds().find(8) != nullptr);
  t.on_fd_close(20, 8);
  CHECK(t.fds().find(8) == nullptr);
  CHECK(t.counters().fd_closed == 3);
  CHECK(t.counters().fd_opened == 5);
}

TEST_CASE("tracker: live figures by site and by allocating thread follow every event") {
  Tracker t;
  // Site 1, thread 10: three blocks; site 2, thread 20: one, realloc'd by thread 30 to site 3.
  t.on_alloc(10, 0x1000, 40, 1);
  t.on_alloc(10, 0x2000, 40, 1);
  t.on_alloc(10, 0x3000, 40, 1);
  t.on_alloc(20, 0x4000, 100, 2);
  t.on_free(20, 0x2000);            // freed by another thread: gone from thread 10's figures
  t.on_realloc(30, 0x4000, 0x5000, 300, 3);
  t.on_alloc(10, 0x1000, 8, 2);     // same address, free never seen: replaces the old block
  const auto& site = t.allocated_by_stack();
  REQUIRE(site.size() > 3);
  CHECK(site[1].calls == 3);
  CHECK(site[1].bytes == 120);
  CHECK(site[1].live_blocks == 1);  // 0x3000
  CHECK(site[1].live_bytes == 40);
  CHECK(site[2].calls == 2);
  CHECK(site[2].live_blocks == 1);  // 0x1000 (8 bytes)
  CHECK(site[2].live_bytes == 8);
  CHECK(site[3].live_blocks == 1);
  CHECK(site[3].live_bytes == 300);
  const auto& th = t.live_by_thread();
  CHECK(th.at(10).blocks == 2);
  CHECK(th.at(10).bytes == 48);
  CHECK(th.at(20).blocks == 0);
  CHECK(th.at(30).bytes == 300);
  // The figures sum to the counters.
  uint64_t blocks = 0, bytes = 0;
  for (const auto& s : site) blocks += s.live_blocks, bytes += s.live_bytes;
  CHECK(blocks == t.counters().live_blocks);
  CHECK(bytes == t.counters().live_bytes);
  t.on_exec(10);
  for (const auto& s : t.allocated_by_stack()) CHECK(s.live_blocks == 0);
  CHECK(t.live_by_thread().empty());
}
