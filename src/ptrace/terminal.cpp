#include "terminal.hpp"

#include <csignal>
#include <initializer_list>
#include <unistd.h>

namespace ptmem::ptrace {
namespace {

// tcsetpgrp from a background group raises SIGTTOU unless it is blocked.
void set_foreground(int fd, pid_t pgrp) {
  sigset_t ttou, old;
  sigemptyset(&ttou);
  sigaddset(&ttou, SIGTTOU);
  pthread_sigmask(SIG_BLOCK, &ttou, &old);
  (void)::tcsetpgrp(fd, pgrp);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

}  // namespace

bool Terminal::prepare() {
  for (int fd : {0, 1, 2}) {
    if (::isatty(fd) && ::tcgetpgrp(fd) == ::getpgrp()) {
      fd_ = fd;
      // ptmem writes its live line and report to the terminal while the program has the
      // foreground; with `stty tostop` that would stop ptmem.  An ignored SIGTTOU lets
      // the write through.
      ttou_ignored_ = ::signal(SIGTTOU, SIG_IGN) == SIG_IGN;
      return true;
    }
  }
  return false;
}

void Terminal::in_child() const {
  if (fd_ < 0) return;
  ::setpgid(0, 0);
  if (!ttou_ignored_) ::signal(SIGTTOU, SIG_DFL);  // exec keeps an ignored signal ignored
}

void Terminal::hand_over(pid_t program) {
  if (fd_ < 0) return;
  program_ = program;
  ::setpgid(program, program);  // also done by the child: whichever runs first
  set_foreground(fd_, program);
}

void Terminal::mirror_stop(int sig) {
  if (fd_ < 0 || program_ <= 0) return;
  struct sigaction dfl {}, old {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(sig, &dfl, &old);
  sigset_t one, mask;
  sigemptyset(&one);
  sigaddset(&one, sig);
  pthread_sigmask(SIG_UNBLOCK, &one, &mask);
  ::raise(sig);  // the default action stops ptmem here until SIGCONT
  pthread_sigmask(SIG_SETMASK, &mask, nullptr);
  ::sigaction(sig, &old, nullptr);
  // `fg` gave the terminal to ptmem's group; `bg` did not.
  if (::tcgetpgrp(fd_) == ::getpgrp()) set_foreground(fd_, program_);
  ::kill(-program_, SIGCONT);
}

void Terminal::take_back() {
  if (fd_ < 0 || program_ <= 0) return;
  if (::tcgetpgrp(fd_) == program_) set_foreground(fd_, ::getpgrp());
  program_ = 0;
}

}  // namespace ptmem::ptrace
