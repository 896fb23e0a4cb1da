// The SandboxFusion-compatible service: request parsing and errors, response shape, bearer token, and a
// bounded load test (64 concurrent clients get a result or a 429, memory stays bounded).
#include "sandbox/service.h"

#include <atomic>
#include <fstream>
#include <thread>

#include "sandbox/detail/base64.h"
#include "tests/sandbox/http_client.h"
#include "tests/sandbox/sandbox_test.h"

namespace k2::sandbox {
namespace {

using http::testing::Post;

TEST(ParseRunCode, ReadsTheSandboxFusionShape) {
  json body = {{"code", "print(1)"}, {"language", "python"}, {"compile_timeout", 10}, {"run_timeout", 3},
               {"memory_limit_MB", 256}, {"stdin", "in"}, {"files", {{"a.txt", Base64Encode("hi")}}},
               {"fetch_files", {"out.txt"}}, {"extra_key_from_a_client", true}};
  auto r = ParseRunCode(body, Limits{}, 60);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->code, "print(1)");
  EXPECT_EQ(r->limits.wall_s, 3);
  EXPECT_EQ(r->limits.cpu_s, 3);
  EXPECT_EQ(r->limits.memory_mb, 256);
  EXPECT_EQ(r->stdin_data, "in");
  EXPECT_EQ(r->files.at("a.txt"), "hi");
  EXPECT_EQ(r->fetch_files, std::vector<std::string>{"out.txt"});
  auto d = ParseRunCode({{"code", "x"}, {"memory_limit_MB", -1}, {"run_timeout", 1000}}, Limits{}, 60);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->limits.memory_mb, Limits{}.memory_mb);
  EXPECT_EQ(d->limits.wall_s, 60) << "run_timeout is capped";
}

TEST(ParseRunCode, NamesTheBadField) {
  struct Case { json body; const char* field; };
  std::vector<Case> cases = {
      {json::array(), "body"},
      {{{"language", "python"}}, "code"},
      {{{"code", 1}}, "code"},
      {{{"code", "x"}, {"language", "rust"}}, "language"},
      {{{"code", "x"}, {"run_timeout", "10"}}, "run_timeout"},
      {{{"code", "x"}, {"run_timeout", -1}}, "run_timeout"},
      {{{"code", "x"}, {"memory_limit_MB", 1}}, "memory_limit_MB"},
      {{{"code", "x"}, {"files", {{"a", "!!"}}}}, "files.a"},
      {{{"code", "x"}, {"fetch_files", {1}}}, "fetch_files/0"},
  };
  for (auto& c : cases) {
    auto r = ParseRunCode(c.body, Limits{}, 60);
    ASSERT_FALSE(r.ok()) << c.body.dump();
    EXPECT_NE(r.status().message().find(c.field), std::string::npos) << r.status().message();
  }
}

TEST(RunResultToJson, UsesSandboxFusionStatuses) {
  RunResult ok;
  ok.status = RunStatus::kOk;
  ok.exit_code = 0;
  ok.stdout_data = "1\n";
  ok.files["f"] = "bytes";
  json j = RunResultToJson(ok);
  EXPECT_EQ(j["status"], "Success");
  EXPECT_EQ(j["run_result"]["status"], "Finished");
  EXPECT_EQ(j["run_result"]["return_code"], 0);
  EXPECT_EQ(j["run_result"]["stdout"], "1\n");
  EXPECT_EQ(j["files"]["f"], Base64Encode("bytes"));
  RunResult to;
  to.status = RunStatus::kTimeout;
  to.signal = 9;
  j = RunResultToJson(to);
  EXPECT_EQ(j["status"], "Failed");
  EXPECT_EQ(j["run_result"]["status"], "TimeLimitExceeded");
  EXPECT_EQ(j["run_result"]["return_code"], 137);
  RunResult se;
  se.status = RunStatus::kSandboxError;
  se.message = "m";
  j = RunResultToJson(se);
  EXPECT_EQ(j["status"], "SandboxError");
  EXPECT_TRUE(j["run_result"].is_null());
}

class ServiceTest : public ::testing::Test {
 protected:
  void Start(const std::string& token = "", int max_concurrent = 8, int max_queue = 64) {
    ServiceConfig cfg;
    cfg.port = 0;
    cfg.max_concurrent = max_concurrent;
    cfg.max_queue = max_queue;
    cfg.max_body_bytes = 1 << 20;
    svc_ = std::make_unique<Service>(testing::Shared(), cfg, token);
    auto s = svc_->Listen();
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
    port_ = server_->port();
  }
  std::unique_ptr<Service> svc_;
  std::unique_ptr<http::Server> server_;
  int port_ = 0;
};

TEST_F(ServiceTest, RunsCodeEndToEnd) {
  Start();
  json body = {{"code", "import sys\ndata = open('in.txt').read()\nprint(input() + data)\nopen('o', 'w').write('out')"},
               {"language", "python"}, {"stdin", "x\n"}, {"files", {{"in.txt", Base64Encode("y")}}},
               {"fetch_files", {"o"}}};
  auto r = Post(port_, "/run_code", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["status"], "Success") << r.body;
  EXPECT_EQ(j["run_result"]["stdout"], "xy\n");
  EXPECT_EQ(j["files"]["o"], Base64Encode("out"));
  auto bad = Post(port_, "/run_code", "{not json");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("/run_code body"), std::string::npos) << bad.body;
  EXPECT_EQ(Post(port_, "/nope", "{}").status, 404);
  EXPECT_EQ(http::testing::Get(port_, "/run_code").status, 405);
  EXPECT_EQ(http::testing::Get(port_, "/health").status, 200);
  EXPECT_EQ(Post(port_, "/run_code", std::string(2 << 20, ' ')).status, 413);
}

TEST_F(ServiceTest, RequiresTheBearerTokenWhenConfigured) {
  Start("s3cret");
  json body = {{"code", "print(1)"}};
  EXPECT_EQ(Post(port_, "/run_code", body.dump()).status, 401);
  EXPECT_EQ(Post(port_, "/run_code", body.dump(), "Authorization: Bearer wrong\r\n").status, 401);
  auto r = Post(port_, "/run_code", body.dump(), "Authorization: Bearer s3cret\r\n");
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(ServiceTest, KeepsServingThroughHostilePrograms) {
  Start();
  std::vector<std::thread> ts;
  std::vector<std::string> statuses(3);
  const char* attacks[] = {"import os\nwhile True:\n    try: os.fork()\n    except OSError: pass",
                           "a = bytearray(1 << 30)",
                           "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass\nprint('x')"};
  const double timeouts[] = {2, 20, 20};  // the fork bomb hogs the CPU; the others must not time out
  for (int i = 0; i < 3; ++i) {
    ts.emplace_back([&, i] {
      auto r = Post(port_, "/run_code", json{{"code", attacks[i]}, {"run_timeout", timeouts[i]}, {"memory_limit_MB", 64}}.dump());
      if (r.status == 200) statuses[i] = json::parse(r.body)["k2_status"];
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(statuses[0], "timeout");
  EXPECT_EQ(statuses[1], "memory_limit");
  EXPECT_EQ(statuses[2], "ok");
  auto r = Post(port_, "/run_code", json{{"code", "print(2)"}}.dump());
  EXPECT_EQ(json::parse(r.body)["run_result"]["stdout"], "2\n");
}

int64_t RssKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return 0;
}

// The acceptance load test, bounded to a few seconds (bench/sandbox/soak.sh runs the 60 s version).
TEST_F(ServiceTest, SixtyFourConcurrentClientsGetAResultOrA429) {
  Start("", /*max_concurrent=*/4, /*max_queue=*/8);
  const std::string body = json{{"code", "print(1)"}, {"run_timeout", 5}}.dump();
  for (int i = 0; i < 4; ++i) Post(port_, "/run_code", body);  // warm-up: faults in the zygotes
  int64_t rss_before = RssKb();
  std::atomic<int> ok{0}, busy{0}, other{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int c = 0; c < 64; ++c) {
    clients.emplace_back([&] {
      while (!stop) {
        auto r = Post(port_, "/run_code", body);
        if (r.status == 200 && json::parse(r.body)["run_result"]["stdout"] == "1\n") {
          ++ok;
        } else if (r.status == 429) {
          ++busy;
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        } else {
          ++other;
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(4));
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_EQ(other, 0) << "every request must get a result or a 429";
  EXPECT_GT(ok, 0);
  EXPECT_GT(busy, 0) << "64 clients against 4+8 slots must see 429s";
  EXPECT_LT(RssKb() - rss_before, 64 * 1024) << "RSS grew by more than 64 MiB";
  // A worker counts its request done after the reply is sent and the connection drained, a moment after
  // the client has read the reply: wait (at most 2 s) for the counters to settle.
  auto st = server_->stats();
  for (int i = 0; i < 200 && (st.in_flight != 0 || st.queued != 0); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    st = server_->stats();
  }
  EXPECT_EQ(st.in_flight, 0);
  EXPECT_EQ(st.queued, 0);
  testing::ExpectNoRunLeftovers(testing::Shared());
}

}  // namespace
}  // namespace k2::sandbox
