// Every export format of one real trace agrees with the JSON report of the same run
// (issue #10): the folded stacks and the valgrind XML and pprof totals, SARIF valid against
// the 2.1.0 schema.  Each format's layout is unit-tested on a hand-made report
// (tests/unit/report_formats_test.cpp).  Not per engine: both build the same report.
#include <doctest/doctest.h>

#include <map>
#include <sstream>

#include "../support/process.hpp"
#include "../support/trace_helpers.hpp"

using namespace ptmem::test;

TEST_CASE("report formats: the folded, XML, SARIF and pprof forms of a real trace agree with its JSON") {
  auto out = temp_dir() + "/out";
  std::vector<std::string> argv{ptmem::test::ptmem(), "launch", "--output-dir", out};
  argv.insert(argv.end(), kEveryLeak.begin(), kEveryLeak.end());
  for (const char* f : {"json", "valgrind-xml", "sarif", "folded", "pprof"}) argv.insert(argv.end(), {"--format", f});
  argv.insert(argv.end(), {"--", sample("demo")});
  auto res = run(argv);
  INFO(res.err);
  REQUIRE(res.status == 0);
  Json j;
  std::string error;
  REQUIRE(load_report(out + "/report.json", j, &error));
  const long bytes = summary(j, "leaked_bytes");
  CHECK(bytes == 105);

  // folded: "outermost;...;site BYTES" per stack; the same stacks and bytes as the JSON.
  std::map<std::string, long> from_json, from_folded;
  for (auto& g : leaks_of(j)) {
    std::string key;
    for (size_t i = g["stack"].size(); i-- > 0;) key += frame_function(g["stack"][i]) + (i ? ";" : "");
    from_json[key] += g["bytes"].get<long>();
  }
  std::istringstream folded(read_text_file(out + "/report.folded"));
  for (std::string line; std::getline(folded, line);) {
    auto space = line.rfind(' ');
    REQUIRE(space != std::string::npos);
    from_folded[line.substr(0, space)] += std::stol(line.substr(space + 1));
  }
  CHECK(from_folded == from_json);
  CHECK(from_folded["main;handle;parse_request"] == 105);

  // valgrind XML: well formed; the leaked bytes and blocks of its errors add up; the fd.
  auto xml = out + "/report.xml";
  CHECK(run({"/usr/bin/xmllint", "--noout", xml}).status == 0);
  auto number = [&](const std::string& xpath) {
    auto r = run({"/usr/bin/xmllint", "--xpath", xpath, xml});
    return r.status == 0 ? std::stol(r.out) : -1;
  };
  CHECK(number("sum(//error/xwhat/leakedbytes)") == 105);
  CHECK(number("sum(//error/xwhat/leakedblocks)") == 3);
  CHECK(number("count(//error[kind='FdNotClosed'])") == 1);
  CHECK(number("count(//error[kind='Leak_DefinitelyLost']/stack/frame[fn='parse_request'][file='demo.c'])") == 1);

  // SARIF: valid against the 2.1.0 schema; a result per leak site and per fd.
  auto schema = build_path("npm/node_modules/@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json");
  auto v = run({"/usr/bin/python3", "-c",
                "import json,sys,jsonschema\n"
                "s=json.load(open(sys.argv[1])); d=json.load(open(sys.argv[2]))\n"
                "print(len(list(jsonschema.Draft4Validator(s).iter_errors(d))), len(d['runs'][0]['results']))\n",
                schema, out + "/report.sarif"});
  INFO(v.err);
  CHECK(v.out == "0 " + std::to_string(leaks_of(j).size() + fd_leaks_of(j).size()) + "\n");

  // pprof: protoc's decoder; leaked_bytes (the first value of each sample) adds up.
  auto dec = run({"/bin/bash", "-c",
                  "gzip -dc " + out + "/report.pb.gz | protoc --decode=perftools.profiles.Profile --proto_path=" +
                      sample_source("../src/report") + " profile.proto"});
  INFO(dec.err);
  REQUIRE(dec.status == 0);
  long leaked = 0, allocated = 0, column = 0;
  std::istringstream in(dec.out);
  for (std::string line; std::getline(in, line);) {
    if (line == "sample {") column = 0;
    if (line.starts_with("  value: ")) {
      long value = std::stol(line.substr(9));
      if (column == 0) leaked += value;
      if (column == 2) allocated += value;
      ++column;
    }
  }
  CHECK(leaked == 105);
  CHECK(allocated == summary(j, "total_allocated_bytes"));
}
