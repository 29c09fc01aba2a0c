// The export formats (formats.hpp), each read back by a real consumer: XML by python's
// parser, SARIF by a JSON-schema validator against the 2.1.0 schema, the pprof profile by
// protoc's decoder and the generated classes.  All run on one report made by hand.
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <zlib.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "../support/process.hpp"
#include "profile.pb.h"
#include "ptmem/report/formats.hpp"

using namespace ptmem;
using report::Frame;

namespace {

// Debian's python: the one python3-jsonschema installs into (PATH may hold another).
const std::string kPython = "/usr/bin/python3";
const std::string kApp = "/work/app/widget";
const std::string kLibfoo = "/usr/lib/libfoo.so.1";

Frame fr(uint64_t address, std::string module, uint64_t offset, std::string function, std::string file = "",
         int line = 0, bool inlined = false) {
  Frame f;
  f.address = address;
  f.module = std::move(module);
  f.module_offset = offset;
  f.function = std::move(function);
  f.file = std::move(file);
  f.line = line;
  f.inlined = inlined;
  return f;
}

report::Leak leak(std::string kind, uint64_t blocks, uint64_t bytes, std::vector<Frame> stack) {
  report::Leak l;
  l.kind = std::move(kind);
  l.blocks = blocks;
  l.bytes = bytes;
  l.stack = std::move(stack);
  return l;
}

// make_buf inlined into a function whose name holds '<' and '&', called by main.
const std::vector<Frame> kInlinedStack = {
    fr(0x401136, kApp, 0x1136, "make_buf", "/work/app/include/buf.h", 7, true),
    fr(0x401136, kApp, 0x1136, "Widget<int>::build(std::vector<int>&)", "/work/app/widget.cpp", 12),
    fr(0x401200, kApp, 0x1200, "main", "/work/app/main.cpp", 30)};
// A frame without any debug info or symbol, called by main.
const std::vector<Frame> kBareStack = {fr(0x7f0000001234, kLibfoo, 0x1234, ""),
                                       fr(0x401210, kApp, 0x1210, "main", "/work/app/main.cpp", 31)};

report::Report sample_report() {
  report::Report r;
  r.target.pid = 1234;
  r.target.command = "widget";
  r.target.argv = {kApp, "--fast", "a<b"};
  r.target.exit_code = 0;
  r.leaks = {leak("definitely_lost", 2, 64, kInlinedStack), leak("still_reachable", 1, 40, kBareStack),
             leak("indirectly_lost", 1, 16, kInlinedStack)};
  report::FdLeak fd;
  fd.fd = 3;
  fd.kind = proc::FdKind::File;
  fd.target = "/tmp/data.txt";
  fd.description = "file /tmp/data.txt";
  fd.stack = {fr(0x401300, kApp, 0x1300, "open_log", "/work/app/log.c", 5),
              fr(0x401310, kApp, 0x1310, "main", "/work/app/main.cpp", 32)};
  r.fd_leaks = {fd};
  r.suppressions_used = {{"libfoo-init", "app.supp", 3, 2, 3, 100}};
  r.allocated = {leak("allocated", 10, 1000, kInlinedStack), leak("allocated", 5, 200, kBareStack)};

  report::Report child;
  child.target.pid = 1235;
  child.target.command = "widget";
  child.leaks = {leak("unclassified", 1, 8,
                      {fr(0x401400, kApp, 0x1400, "child_work", "src/child.c", 3),
                       fr(0x401220, kApp, 0x1220, "main", "/work/app/main.cpp", 40)})};
  report::FdLeak sock;
  sock.fd = 5;
  sock.kind = proc::FdKind::Socket;
  sock.target = "socket:[999]";
  sock.description = "socket, TCP 127.0.0.1:8080";
  child.fd_leaks = {sock};
  child.suppressions_used = {{"libfoo-init", "app.supp", 3, 1, 1, 20}};
  child.allocated = {leak("allocated", 1, 8, child.leaks[0].stack)};
  r.children = {child};
  return r;
}

std::string write_temp(const std::string& name, const std::string& data) {
  std::string path = test::temp_dir() + "/" + name;
  std::ofstream(path, std::ios::binary) << data;
  return path;
}

// Runs a python script on |args|; its stdout, after checking it succeeded.
std::string python(const std::string& script, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {kPython, "-c", script};
  argv.insert(argv.end(), args.begin(), args.end());
  test::RunResult r = test::run(argv);
  INFO("python stderr: " << r.err);
  REQUIRE(r.status == 0);
  return r.out;
}

// memcheck XML as lines: what a consumer reads from it, parsed by a real XML parser.
constexpr const char* kValgrindSummary = R"(
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
print(root.tag, root.findtext('protocolversion'), root.findtext('protocoltool'), root.findtext('pid'))
print('argv', '|'.join(a.tag + '=' + a.text for a in root.find('args/argv')))
for e in root.findall('error'):
    print('error', e.findtext('unique'), e.findtext('kind'), e.findtext('xwhat/leakedbytes', '-'),
          e.findtext('xwhat/leakedblocks', '-'), e.findtext('fd', '-'), e.findtext('path', '-'))
    print('  ' + (e.findtext('xwhat/text') or e.findtext('what')))
    for f in e.findall('stack/frame'):
        print('  frame', '|'.join(f.findtext(k, '-') for k in ('ip', 'obj', 'fn', 'dir', 'file', 'line')))
for p in root.findall('errorcounts/pair'):
    print('errorcount', p.findtext('count'), p.findtext('unique'))
for p in root.findall('suppcounts/pair'):
    print('suppcount', p.findtext('count'), p.findtext('name'))
)";

// The element layout: the document's top-level elements, then every element path of its
// first Leak_DefinitelyLost error, each once, in document order.
constexpr const char* kXmlLayout = R"(
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
def distinct(names):
    seen = []
    for n in names:
        if n not in seen: seen.append(n)
    return seen
print(' '.join(distinct(c.tag for c in root)))
error = next(e for e in root.findall('error') if e.findtext('kind') == 'Leak_DefinitelyLost')
def paths(e, prefix):
    for c in e:
        yield prefix + c.tag
        yield from paths(c, prefix + c.tag + '/')
print(' '.join(distinct(paths(error, ''))))
)";

}  // namespace

TEST_CASE("report formats: valgrind xml has memcheck's fields for every leak and fd, children included") {
  std::string path = write_temp("report.xml", report::to_valgrind_xml(sample_report()));
  CHECK(test::run({"/usr/bin/xmllint", "--noout", path}).status == 0);
  const std::string app = "/work/app/widget|";
  CHECK(python(kValgrindSummary, {path}) ==
        "valgrindoutput 4 memcheck 1234\n"
        "argv exe=/work/app/widget|arg=--fast|arg=a<b\n"
        "error 0x0 Leak_DefinitelyLost 64 2 - -\n"
        "  64 bytes in 2 blocks are definitely lost in loss record 1 of 3\n"
        "  frame 0x401136|" + app + "make_buf|/work/app/include|buf.h|7\n"
        "  frame 0x401136|" + app + "Widget<int>::build(std::vector<int>&)|/work/app|widget.cpp|12\n"
        "  frame 0x401200|" + app + "main|/work/app|main.cpp|30\n"
        "error 0x1 Leak_StillReachable 40 1 - -\n"
        "  40 bytes in 1 blocks are still reachable in loss record 2 of 3\n"
        "  frame 0x7F0000001234|/usr/lib/libfoo.so.1|-|-|-|-\n"
        "  frame 0x401210|" + app + "main|/work/app|main.cpp|31\n"
        "error 0x2 Leak_IndirectlyLost 16 1 - -\n"
        "  16 bytes in 1 blocks are indirectly lost in loss record 3 of 3\n"
        "  frame 0x401136|" + app + "make_buf|/work/app/include|buf.h|7\n"
        "  frame 0x401136|" + app + "Widget<int>::build(std::vector<int>&)|/work/app|widget.cpp|12\n"
        "  frame 0x401200|" + app + "main|/work/app|main.cpp|30\n"
        "error 0x3 FdNotClosed - - 3 /tmp/data.txt\n"
        "  Open file descriptor 3: file /tmp/data.txt\n"
        "  frame 0x401300|" + app + "open_log|/work/app|log.c|5\n"
        "  frame 0x401310|" + app + "main|/work/app|main.cpp|32\n"
        // unclassified is memcheck's "possibly lost": never freed, not proven lost.
        "error 0x4 Leak_PossiblyLost 8 1 - -\n"
        "  8 bytes in 1 blocks are never freed (not classified) in loss record 1 of 1 of pid 1235 (widget)\n"
        "  frame 0x401400|" + app + "child_work|src|child.c|3\n"
        "  frame 0x401220|" + app + "main|/work/app|main.cpp|40\n"
        "error 0x5 FdNotClosed - - 5 socket:[999]\n"
        "  Open file descriptor 5: socket, TCP 127.0.0.1:8080 of pid 1235 (widget)\n"
        "errorcount 1 0x3\n"
        "errorcount 1 0x5\n"
        "suppcount 3 libfoo-init\n");
}

TEST_CASE("report formats: valgrind xml has the element layout of valgrind's own output") {
  std::string dir = test::temp_dir();
  std::ofstream(dir + "/lost.c") << "#include <stdlib.h>\nvoid* volatile p;\n"
                                    "int main(void) { p = malloc(24); p = 0; return 0; }\n";
  REQUIRE(test::run({"/usr/bin/gcc", "-g", "-O0", "-o", dir + "/lost", dir + "/lost.c"}).status == 0);
  test::RunResult vg = test::run({"/usr/bin/valgrind", "--tool=memcheck", "--xml=yes", "--xml-file=" + dir + "/vg.xml",
                                  "--leak-check=full", "--show-leak-kinds=all", dir + "/lost"});
  INFO("valgrind: " << vg.err);
  REQUIRE(vg.status == 0);
  std::string ours = write_temp("ours.xml", report::to_valgrind_xml(sample_report()));
  std::string theirs = python(kXmlLayout, {dir + "/vg.xml"});
  CHECK(theirs ==
        "protocolversion protocoltool preamble pid ppid tool args status error errorcounts suppcounts\n"
        "unique tid kind xwhat xwhat/text xwhat/leakedbytes xwhat/leakedblocks stack stack/frame stack/frame/ip "
        "stack/frame/obj stack/frame/fn stack/frame/dir stack/frame/file stack/frame/line\n");
  CHECK(python(kXmlLayout, {ours}) == theirs);
}

TEST_CASE("report formats: sarif is valid SARIF 2.1.0, a result per leak site and fd of every process") {
  using nlohmann::json;
  std::string text = report::to_sarif(sample_report());
  json doc = json::parse(text);
  // The schema (draft 4) as the SARIF TC published it, via npm (tests/formats.mk).
  std::string schema = test::build_path("npm/node_modules/@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json");
  constexpr const char* kValidate = R"(
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
doc = json.load(open(sys.argv[2]))
errors = list(jsonschema.Draft4Validator(schema).iter_errors(doc))
for e in errors: print('invalid at', list(e.absolute_path), e.message[:200])
print(len(errors), 'errors')
)";
  CHECK(python(kValidate, {schema, write_temp("report.sarif", text)}) == "0 errors\n");
  // The validator does reject: a result without its message.
  json broken = doc;
  broken["runs"][0]["results"][0].erase("message");
  CHECK(python(kValidate, {schema, write_temp("broken.sarif", broken.dump())}) != "0 errors\n");

  CHECK(doc["version"] == "2.1.0");
  const json& run = doc["runs"][0];
  CHECK(run["tool"]["driver"]["name"] == "ptmem");
  CHECK(run["tool"]["driver"]["rules"].size() == 6);
  const json& results = run["results"];
  REQUIRE(results.size() == 6);
  std::vector<std::string> summary;
  for (const json& r : results) {
    const json& rule = run["tool"]["driver"]["rules"][r["ruleIndex"].get<size_t>()];
    CHECK(rule["id"] == r["ruleId"]);
    const json& loc = r["locations"][0]["physicalLocation"];
    std::string where = loc["artifactLocation"]["uri"].get<std::string>();
    if (loc.contains("region")) where += ":" + std::to_string(loc["region"]["startLine"].get<int>());
    size_t flow = r.contains("codeFlows") ? r["codeFlows"][0]["threadFlows"][0]["locations"].size() : 0;
    summary.push_back(fmt::format("{} {} pid {} {} flow {}: {}", r["ruleId"].get<std::string>(),
                                  r["level"].get<std::string>(), r["properties"]["pid"].get<int>(), where, flow,
                                  r["message"]["text"].get<std::string>()));
  }
  CHECK(summary == std::vector<std::string>{
                       "ptmem/definitely-lost error pid 1234 file:///work/app/include/buf.h:7 flow 3: "
                       "64 bytes in 2 blocks are never freed (definitely lost)",
                       // the frame without debug info is skipped for the first with a file
                       "ptmem/still-reachable note pid 1234 file:///work/app/main.cpp:31 flow 2: "
                       "40 bytes in 1 block is never freed (still reachable)",
                       "ptmem/indirectly-lost error pid 1234 file:///work/app/include/buf.h:7 flow 3: "
                       "16 bytes in 1 block is never freed (indirectly lost)",
                       "ptmem/fd-leak warning pid 1234 file:///work/app/log.c:5 flow 2: "
                       "fd 3 (file /tmp/data.txt) is never closed",
                       "ptmem/unclassified warning pid 1235 src/child.c:3 flow 2: "
                       "8 bytes in 1 block is never freed (unclassified) in pid 1235 (widget)",
                       // no stack: the executable is the location
                       "ptmem/fd-leak warning pid 1235 widget flow 0: "
                       "fd 5 (socket, TCP 127.0.0.1:8080) is never closed in pid 1235 (widget)"});
  CHECK(results[0]["properties"]["bytes"] == 64);
  CHECK(results[0]["properties"]["blocks"] == 2);
  CHECK(results[0]["properties"]["kind"] == "definitely_lost");
  const json& bare = results[1]["codeFlows"][0]["threadFlows"][0]["locations"][0]["location"];
  CHECK(bare["physicalLocation"]["artifactLocation"]["uri"] == "file:///usr/lib/libfoo.so.1");
  CHECK_FALSE(bare["physicalLocation"].contains("region"));
  CHECK(bare["message"]["text"] == "libfoo.so.1+0x1234");
  CHECK(results[0]["partialFingerprints"] == results[2]["partialFingerprints"]);  // one stack
  CHECK(results[0]["partialFingerprints"] != results[1]["partialFingerprints"]);
}

namespace {

std::map<std::string, uint64_t> read_folded(const std::string& text) {
  std::map<std::string, uint64_t> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto space = line.rfind(' ');
    REQUIRE(space != std::string::npos);
    out[line.substr(0, space)] += std::stoull(line.substr(space + 1));
  }
  return out;
}

}  // namespace

TEST_CASE("report formats: folded stacks sum the leaked bytes per stack, outermost frame first") {
  report::Report r = sample_report();
  std::string folded = report::to_folded(r);
  CHECK(std::count(folded.begin(), folded.end(), '\n') == 3);  // the two kinds of one stack share a line
  CHECK(read_folded(folded) ==
        std::map<std::string, uint64_t>{
            {"pid 1234 (widget);main;Widget<int>::build(std::vector<int>&);make_buf", 64 + 16},
            {"pid 1234 (widget);main;libfoo.so.1+0x1234", 40},
            {"pid 1235 (widget);main;child_work", 8}});
  r.children.clear();  // one process: no process frame
  CHECK(read_folded(report::to_folded(r)) ==
        std::map<std::string, uint64_t>{{"main;Widget<int>::build(std::vector<int>&);make_buf", 80},
                                        {"main;libfoo.so.1+0x1234", 40}});
}

TEST_CASE("report formats: flame graph svg has a titled frame per node, widths by bytes") {
  std::string path = write_temp("flame.svg", report::to_flame_svg(sample_report()));
  CHECK(test::run({"/usr/bin/xmllint", "--noout", path}).status == 0);
  constexpr const char* kFrames = R"(
import sys, xml.etree.ElementTree as ET
ns = {'s': 'http://www.w3.org/2000/svg'}
root = ET.parse(sys.argv[1]).getroot()
print(len(root.findall('.//s:script', ns)), 'scripts')
for g in root.findall('s:g', ns):
    assert g.get('class') == 'frame' and len(g.findall('s:rect', ns)) == 1 and len(g.findall('s:text', ns)) == 1
    print(g.findtext('s:title', namespaces=ns), round(float(g.find('s:rect', ns).get('width')), 2))
)";
  // 1180 pixels for 128 bytes.
  CHECK(python(kFrames, {path}) ==
        "0 scripts\n"
        "all (128 bytes, 100.00%) 1180.0\n"
        "pid 1234 (widget) (120 bytes, 93.75%) 1106.25\n"
        "main (120 bytes, 93.75%) 1106.25\n"
        "Widget<int>::build(std::vector<int>&) (80 bytes, 62.50%) 737.5\n"
        "make_buf (80 bytes, 62.50%) 737.5\n"
        "libfoo.so.1+0x1234 (40 bytes, 31.25%) 368.75\n"
        "pid 1235 (widget) (8 bytes, 6.25%) 73.75\n"
        "main (8 bytes, 6.25%) 73.75\n"
        "child_work (8 bytes, 6.25%) 73.75\n");
}

namespace {

std::string gunzip(const std::string& data) {
  z_stream z{};
  REQUIRE(inflateInit2(&z, 15 + 16) == Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  std::string out;
  char buf[65536];
  int rc;
  do {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
  } while (rc == Z_OK);
  inflateEnd(&z);
  REQUIRE(rc == Z_STREAM_END);
  return out;
}

}  // namespace

TEST_CASE("report formats: pprof profile decodes with protoc; totals per sample type, inlined lines") {
  std::string gz = report::to_pprof(sample_report());
  std::string raw = write_temp("profile.pb", gunzip(gz));
  // protoc's own decoder, given the .proto: the sum of each value column over the samples.
  test::RunResult dec = test::run(
      {"/bin/bash", "-c", "protoc --decode=perftools.profiles.Profile --proto_path=../src/report profile.proto < " + raw});
  INFO("protoc: " << dec.err);
  REQUIRE(dec.status == 0);
  std::vector<uint64_t> totals(4);
  std::istringstream in(dec.out);
  size_t column = 0;
  for (std::string line; std::getline(in, line);) {
    if (line == "sample {") column = 0;
    if (line.starts_with("  value: ")) totals.at(column++) += std::stoull(line.substr(9));
  }
  CHECK(totals == std::vector<uint64_t>{64 + 40 + 16 + 8, 2 + 1 + 1 + 1, 1000 + 200 + 8, 10 + 5 + 1});

  perftools::profiles::Profile p;
  REQUIRE(p.ParseFromString(gunzip(gz)));
  auto str = [&](int64_t i) { return p.string_table(static_cast<int>(i)); };
  std::vector<std::string> types;
  for (const auto& t : p.sample_type()) types.push_back(str(t.type()) + "/" + str(t.unit()));
  CHECK(types == std::vector<std::string>{"leaked_bytes/bytes", "leaked_blocks/count", "allocated_bytes/bytes",
                                          "allocated_blocks/count"});
  CHECK(str(p.default_sample_type()) == "leaked_bytes");
  CHECK(p.sample_size() == 4 + 3);
  // The first sample: the inlined pair is one location, innermost line first; then main.
  const auto& s = p.sample(0);
  REQUIRE(s.location_id_size() == 2);
  auto location = [&](uint64_t id) { return p.location(static_cast<int>(id - 1)); };
  auto function = [&](uint64_t id) { return p.function(static_cast<int>(id - 1)); };
  const auto& inl = location(s.location_id(0));
  CHECK(inl.address() == 0x401136);
  REQUIRE(inl.line_size() == 2);
  CHECK(str(function(inl.line(0).function_id()).name()) == "make_buf");
  CHECK(inl.line(0).line() == 7);
  CHECK(str(function(inl.line(1).function_id()).name()) == "Widget<int>::build(std::vector<int>&)");
  CHECK(str(function(inl.line(1).function_id()).filename()) == "/work/app/widget.cpp");
  CHECK(str(function(location(s.location_id(1)).line(0).function_id()).name()) == "main");
  // The frame without symbols is named by module and offset, and its module is a mapping.
  const auto& bare = location(p.sample(1).location_id(0));
  CHECK(str(function(bare.line(0).function_id()).name()) == "libfoo.so.1+0x1234");
  const auto& m = p.mapping(static_cast<int>(bare.mapping_id() - 1));
  CHECK(str(m.filename()) == kLibfoo);
  CHECK(m.memory_start() == 0x7f0000000000);
  CHECK(p.mapping_size() == 2);
  // Labels: every sample its pid, a leak its kind.
  std::vector<std::string> labels;
  for (const auto& sample : p.sample()) {
    std::string l;
    for (const auto& label : sample.label())
      l += str(label.key()) + "=" + (label.str() ? str(label.str()) : std::to_string(label.num())) + " ";
    labels.push_back(l);
  }
  CHECK(labels == std::vector<std::string>{"pid=1234 kind=definitely_lost ", "pid=1234 kind=still_reachable ",
                                           "pid=1234 kind=indirectly_lost ", "pid=1234 ", "pid=1234 ",
                                           "pid=1235 kind=unclassified ", "pid=1235 "});
}
