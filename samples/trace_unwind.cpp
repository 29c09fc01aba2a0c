// Unwinding through traced calls.  A C++ exception leaves operator new (which ptmem hooks
// when a preloaded allocator provides it), and a thread is cancelled while blocked in
// accept (a traced call whose return ptmem waits for).  Either unwinder must meet the
// program's real return addresses: the handler catches, the destructor runs.
//
// Output, exactly: "caught bad_alloc", "caught bad_alloc new[]", "destructor ran",
// "joined canceled", "done".  Leaked: 1x48 at @leak after; everything else is freed or
// never allocated (the two failed allocations).
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <new>

namespace {

const size_t kHuge = size_t(1) << 60;  // fails without touching memory
int listener = -1;
void* volatile kept;

struct Guard {
  void* block;
  ~Guard() {
    std::free(block);
    std::puts("destructor ran");
  }
};

void* worker(void*) {
  Guard guard{std::malloc(32)};
  for (;;) {  // accept is the first cancellation point: the cancel lands there
    int c = accept(listener, nullptr, nullptr);
    if (c >= 0) close(c);
  }
  return nullptr;
}

}  // namespace

int main() {
  try {
    kept = ::operator new(kHuge);
    std::puts("no exception");
  } catch (const std::bad_alloc&) {
    std::puts("caught bad_alloc");
  }
  try {
    kept = new char[kHuge];
    std::puts("no exception");
  } catch (const std::bad_alloc&) {
    std::puts("caught bad_alloc new[]");
  }

  listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 ||
      listen(listener, 1) != 0) {
    std::perror("listener");
    return 1;
  }
  pthread_t t;
  pthread_create(&t, nullptr, worker, nullptr);
  pthread_cancel(t);
  void* result = nullptr;
  pthread_join(t, &result);
  std::puts(result == PTHREAD_CANCELED ? "joined canceled" : "joined, not canceled");
  close(listener);

  kept = std::malloc(48);  // @leak after
  std::puts("done");
  return 0;
}
