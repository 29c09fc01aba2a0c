#include "ptmem/util/eprint.hpp"

#include "ptmem/util/output_file.hpp"

namespace ptmem::util {
namespace {

std::string* g_capture = nullptr;  // set by a StderrCapture

}  // namespace

void write_stderr(std::string_view text) {
  if (g_capture) g_capture->append(text);
  else (void)write_all(2, text);
}

StderrCapture::StderrCapture() { g_capture = new std::string; }

StderrCapture::~StderrCapture() {
  delete g_capture;
  g_capture = nullptr;
}

std::string StderrCapture::take() { return std::exchange(*g_capture, {}); }

}  // namespace ptmem::util
