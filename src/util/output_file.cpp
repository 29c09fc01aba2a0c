#include "ptmem/util/output_file.hpp"

#include <cerrno>
#include <climits>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

namespace ptmem::util {

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

namespace {

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

bool check_writable(const std::string& path, std::string* error) {
  if (path == "-") return true;
  if (::access(path.c_str(), F_OK) == 0) {
    if (::access(path.c_str(), W_OK) != 0) {
      if (error) *error = fmt::format("cannot write '{}': {}", path, std::strerror(errno));
      return false;
    }
  }
  auto dir = dir_of(path);
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    if (error) *error = fmt::format("cannot write '{}': {}", path, std::strerror(errno));
    return false;
  }
  return true;
}

bool write_file_atomically(const std::string& path, std::string_view content, std::string* error) {
  if (path == "-") {
    if (!write_all(1, content)) {
      if (error) *error = fmt::format("cannot write to stdout: {}", std::strerror(errno));
      return false;
    }
    return true;
  }
  std::string tmp = fmt::format("{}/.{}.ptmem-{}.tmp", dir_of(path),
                                path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1),
                                ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (error) *error = fmt::format("cannot write '{}': {}", path, std::strerror(errno));
    return false;
  }
  bool ok = write_all(fd, content);
  int saved = errno;
  ok = (::close(fd) == 0) && ok;
  if (ok && ::rename(tmp.c_str(), path.c_str()) != 0) {
    saved = errno;
    ok = false;
  }
  if (!ok) {
    ::unlink(tmp.c_str());
    if (error) *error = fmt::format("cannot write '{}': {}", path, std::strerror(saved));
  }
  return ok;
}

LineAppender::~LineAppender() {
  if (fd_ > 2) ::close(fd_);
}

bool LineAppender::open(const std::string& path, std::string* error) {
  if (path == "-") {
    fd_ = 1;
    return true;
  }
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    if (error) *error = fmt::format("cannot write '{}': {}", path, std::strerror(errno));
    return false;
  }
  return true;
}

bool LineAppender::append(std::string_view lines) { return fd_ >= 0 && write_all(fd_, lines); }

}  // namespace ptmem::util
