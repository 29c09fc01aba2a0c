// The table of traced functions: what each one means to ptmem.  Event sources (today the
// breakpoint engine, later an in-process agent) read it to know which symbols to hook, which
// need their return value, and how to turn arguments and result into events
// (track/decoders.hpp).  Adding a function is adding a row here.
#pragma once
#include <cstdint>
#include <span>
#include <string_view>

#include "ptmem/track/events.hpp"

namespace ptmem::track {

/// Calls of one family nest only in the sense "record the outermost": glibc's realloc calls
/// malloc, fopen calls open.  Families are independent: fopen's malloc of the FILE is a
/// memory event even though it happens inside an fd call.
enum class Family : uint8_t { Alloc, Fd, Count };

/// How arguments and result become events (one decoder per action, track/decoders.cpp).
enum class Action : uint8_t {
  Malloc,         ///< size = a0 -> ptr
  Calloc,         ///< size = a0 * a1 -> ptr
  Realloc,        ///< old = a0, size = a1 -> ptr
  ReallocArray,   ///< old = a0, size = a1 * a2 -> ptr
  Free,           ///< ptr = a0 (no return needed)
  PosixMemalign,  ///< out = (void**)a0, size = a2 -> 0 on success
  Memalign,       ///< size = a1 (memalign, aligned_alloc) -> ptr
  Valloc,         ///< size = a0 -> ptr
  Pvalloc,        ///< size = a0 rounded up to pages -> ptr
  FdResult,       ///< -> new fd (open, socket, dup, eventfd, accept...)
  FdPipe,         ///< int[2] at a0 filled on success (pipe, pipe2)
  FdSocketpair,   ///< int[2] at a3 filled on success
  FdClose,        ///< close(a0) -> 0
  FdDup2,         ///< dup2/dup3(old = a0, new = a1): an open |new| is closed first -> new
  FdFcntl,        ///< fcntl(fd, cmd = a1): F_DUPFD/F_DUPFD_CLOEXEC -> new fd
  FileOpen,       ///< fopen/freopen -> FILE*, fd = FILE->_fileno (freopen closes old fd)
  FileWrap,       ///< fdopen: wraps an existing fd, no new fd
  FileClose,      ///< fclose(FILE* a0): fd read at entry, closed if result == 0
  DirOpen,        ///< opendir -> DIR*, fd = first int of DIR
  DirWrap,        ///< fdopendir: wraps an existing fd
  DirClose,       ///< closedir(DIR* a0): fd read at entry
  CloseRange,     ///< close_range(first = a0, last = a1, flags = a2) -> 0
  RecvMsg,        ///< recvmsg(fd, msghdr* a1): fds in SCM_RIGHTS control messages
};

struct TracedFunction {
  std::string_view name;   ///< ELF symbol
  Family family;
  Action action;
  FdOrigin origin;         ///< for fd-creating actions
  bool needs_return;       ///< result needed: the engine must catch the return
  /// Hooked only where the module that provides malloc provides it too: C++'s operators
  /// new and delete, which a preloaded allocator (jemalloc, tcmalloc) replaces, but which
  /// in libstdc++ just call malloc and free (hooked already: a second stop would be waste).
  bool allocator_only = false;
};

/// Every traced function, allocator first.  Aliases at the same address (malloc and
/// __libc_malloc, open and open64) are deduplicated by the engine by address: first row wins.
std::span<const TracedFunction> traced_functions();

/// Does the action create something (a block, an fd) whose creator's stack is kept?
/// (fcntl only for F_DUPFD; recvmsg only when it carries fds: the engines check those.)
bool creates(Action a);
/// Does it release something?  The release takes effect before the call returns, so an
/// event source orders it by its entry, a creation by its return.
bool releases(Action a);

/// Index of |name| in traced_functions(), or -1.
int find_traced_function(std::string_view name);

}  // namespace ptmem::track
