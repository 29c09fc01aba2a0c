// Mixed compute + allocation workload for `make bench`: a string-keyed hash map of
// sessions updated N times, with some number crunching per update (~0.3 s native at the
// default).  Allocations come from std::string, the map's nodes and its bucket arrays;
// replacing the global operator new/delete counts them exactly (each calls malloc/free
// once, so the counts are the allocator calls a tracer sees).
// Usage: mixed N
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <unordered_map>

static long g_news = 0, g_deletes = 0;

void* operator new(std::size_t n) {
  ++g_news;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  if (!p) return;  // delete of null calls no free(): keep counts of real frees
  ++g_deletes;
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }

namespace {

struct Session {
  unsigned long hits = 0;
  double score = 0;
};

// The compute part: a few thousand dependent floating-point operations.
double crunch(unsigned long seed, int rounds) {
  double x = static_cast<double>(seed % 1000) / 1000.0 + 0.5;
  for (int i = 0; i < rounds; ++i) x = x * 3.7 * (1.0 - x / 4.0) + 1e-9 * i;
  return x;
}

// Everything the workload allocates is freed before it returns, so the counts taken after
// it are every allocator call it made.
double run(long n) {
  std::unordered_map<std::string, Session> sessions;
  unsigned long seed = 12345;
  double total = 0;
  for (long i = 0; i < n; ++i) {
    seed = seed * 6364136223846793005ul + 1442695040888963407ul;
    unsigned long id = (seed >> 33) % 6000;
    // Longer than the small-string buffer: every key is one heap block.
    std::string key = "tenant/" + std::to_string(id % 97) + "/session/" + std::to_string(id);
    Session& s = sessions.try_emplace(std::move(key)).first->second;
    ++s.hits;
    s.score += crunch(seed, 4000);
    total += s.score;
    if (sessions.size() > 3000) sessions.erase(sessions.begin());
  }
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  const double total = run(argc > 1 ? std::atol(argv[1]) : 20000);
  std::printf("bench: alloc_calls=%ld free_calls=%ld fd_create_calls=0 fd_close_calls=0 checksum=%.3f\n",
              g_news, g_deletes, total);
  return 0;
}
