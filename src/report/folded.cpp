// Folded stacks and a flame graph of the leaked bytes.  Both count memory only: an fd leak
// has no bytes to weigh it by.  With --follow-forks children, every stack starts at a
// frame naming its process ("pid 1235 (app)"), so each process is a tower of its own.
#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "format_util.hpp"
#include "ptmem/report/formats.hpp"

namespace ptmem::report {
namespace {

// A frame name as one field of a folded line: ';' separates frames and a newline ends the
// line, so neither may appear in a name.
std::string folded_name(std::string name) {
  for (char& c : name)
    if (c == ';' || c == '\n' || c == '\r') c = c == ';' ? ',' : ' ';
  return name;
}

// Leaked bytes per stack, each stack outermost frame first; stacks in first-seen order.
std::vector<std::pair<std::vector<std::string>, uint64_t>> leaked_stacks(const Report& report) {
  std::vector<std::pair<std::vector<std::string>, uint64_t>> out;
  std::map<std::vector<std::string>, size_t> index;
  for (const Report* r : detail::processes(report)) {
    for (const Leak& l : r->leaks) {
      std::vector<std::string> names;
      if (!report.children.empty()) names.push_back(folded_name(detail::process_label(r->target)));
      for (auto f = l.stack.rbegin(); f != l.stack.rend(); ++f) names.push_back(folded_name(detail::frame_name(*f)));
      if (l.stack.empty()) names.push_back("[no stack]");
      auto [it, inserted] = index.try_emplace(names, out.size());
      if (inserted) out.emplace_back(std::move(names), 0);
      out[it->second].second += l.bytes;
    }
  }
  return out;
}

struct Node {
  std::string name;
  uint64_t bytes = 0;
  std::vector<Node> children;  ///< in first-seen order
};

constexpr int kWidth = 1200, kPad = 10, kRow = 17, kCharWidth = 7;

// Warm colours, the same for the same name, as flame graphs have them.
std::string colour(std::string_view name) {
  uint32_t h = 2166136261u;
  for (unsigned char c : name) h = (h ^ c) * 16777619u;
  return fmt::format("rgb({},{},{})", 205 + h % 50, 80 + (h >> 8) % 130, 40 + (h >> 16) % 50);
}

void draw(std::string& out, const Node& node, double x, int depth, int height, uint64_t total) {
  double w = static_cast<double>(node.bytes) * (kWidth - 2 * kPad) / static_cast<double>(total);
  int y = height - kPad - (depth + 1) * kRow;
  std::string name = detail::xml_escape(node.name);
  out += fmt::format("<g class=\"frame\">\n<title>{} ({} bytes, {:.2f}%)</title>\n", name, node.bytes,
                     100.0 * static_cast<double>(node.bytes) / static_cast<double>(total));
  out += fmt::format("<rect x=\"{:.2f}\" y=\"{}\" width=\"{:.2f}\" height=\"{}\" fill=\"{}\" rx=\"2\"/>\n", x, y, w,
                     kRow - 1, colour(node.name));
  // Only as much of the name as fits; the title has all of it.
  size_t fits = w > 3 * kCharWidth ? static_cast<size_t>(w / kCharWidth) - 1 : 0;
  std::string label = node.name.size() <= fits ? node.name : fits > 2 ? node.name.substr(0, fits - 2) + ".." : "";
  out += fmt::format("<text x=\"{:.2f}\" y=\"{}\">{}</text>\n</g>\n", x + 3, y + kRow - 5, detail::xml_escape(label));
  for (const Node& child : node.children) {
    draw(out, child, x, depth + 1, height, total);
    x += static_cast<double>(child.bytes) * (kWidth - 2 * kPad) / static_cast<double>(total);
  }
}

int depth_of(const Node& node) {
  int d = 0;
  for (const Node& c : node.children) d = std::max(d, depth_of(c));
  return d + 1;
}

}  // namespace

std::string to_folded(const Report& report) {
  std::string out;
  for (const auto& [names, bytes] : leaked_stacks(report)) {
    std::string line;
    for (const std::string& n : names) line += (line.empty() ? "" : ";") + n;
    out += fmt::format("{} {}\n", line, bytes);
  }
  return out;
}

std::string to_flame_svg(const Report& report) {
  // The tree of stacks that leaked something: a stack of 0 bytes would be a 0-wide frame.
  Node root{"all"};
  for (const auto& [names, bytes] : leaked_stacks(report)) {
    if (bytes == 0) continue;
    root.bytes += bytes;
    Node* node = &root;
    for (const std::string& n : names) {
      auto it = std::find_if(node->children.begin(), node->children.end(), [&](const Node& c) { return c.name == n; });
      if (it == node->children.end()) it = node->children.insert(node->children.end(), Node{n});
      it->bytes += bytes;
      node = &*it;
    }
  }
  int height = 2 * kPad + (depth_of(root) + 2) * kRow;
  std::string out = fmt::format(
      "<?xml version=\"1.0\" standalone=\"no\"?>\n"
      "<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\">\n"
      "<style>text {{ font-family: monospace; font-size: 12px; pointer-events: none; }} "
      "g.frame:hover rect {{ stroke: black; stroke-width: 1; }}</style>\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"rgb(250,250,240)\"/>\n"
      "<text x=\"{2}\" y=\"{3}\">ptmem: leaked bytes by allocating stack ({4} bytes; hover for names)</text>\n",
      kWidth, height, kPad, kPad + 12, root.bytes);
  if (root.bytes > 0) draw(out, root, kPad, 0, height, root.bytes);
  return out + "</svg>\n";
}

}  // namespace ptmem::report
