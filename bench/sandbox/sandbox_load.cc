// Load generator for `k2gym sandbox serve`: N concurrent clients post print(1) to /run_code for S
// seconds; every answer must be a correct result or a 429. Prints counts, rate and latency percentiles.
//
// usage: sandbox_load --port P [--clients 64] [--seconds 60] [--code 'print(1)']
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/sandbox/http_client.h"

namespace {

using Clock = std::chrono::steady_clock;

// One POST through the tests' loopback client; returns the status code (0 = no answer) and the body.
int Post(int port, const std::string& body, std::string* out) {
  auto r = k2::http::testing::Send(port, "POST /run_code HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                                   "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body, 120000);
  *out = r.body;
  return r.status;
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0, clients = 64;
  double seconds = 60;
  std::string code = "print(1)";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--port" && i + 1 < argc) port = std::atoi(argv[++i]);
    else if (a == "--clients" && i + 1 < argc) clients = std::atoi(argv[++i]);
    else if (a == "--seconds" && i + 1 < argc) seconds = std::atof(argv[++i]);
    else if (a == "--code" && i + 1 < argc) code = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s --port P [--clients N] [--seconds S] [--code CODE]\n", argv[0]);
      return 2;
    }
  }
  if (port <= 0) {
    std::fprintf(stderr, "sandbox_load: --port is required\n");
    return 2;
  }
  std::string escaped;
  for (char c : code) {
    if (c == '"' || c == '\\') escaped += '\\';
    if (c == '\n') { escaped += "\\n"; continue; }
    escaped += c;
  }
  const std::string body = "{\"code\": \"" + escaped + "\", \"language\": \"python\", \"run_timeout\": 10}";
  std::atomic<long> ok{0}, busy{0}, wrong{0}, failed{0};
  std::mutex mu;
  std::vector<double> lat;
  auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::thread> ts;
  for (int c = 0; c < clients; ++c) {
    ts.emplace_back([&] {
      std::vector<double> mine;
      while (Clock::now() < end) {
        std::string out;
        auto t0 = Clock::now();
        int st = Post(port, body, &out);
        double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        if (st == 200 && out.find("\"status\":\"Success\"") != std::string::npos) {
          ++ok;
          mine.push_back(ms);
        } else if (st == 429) {
          ++busy;
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        } else if (st == 0) {
          ++failed;
        } else {
          ++wrong;
        }
      }
      std::lock_guard<std::mutex> lk(mu);
      lat.insert(lat.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : ts) t.join();
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double q) { return lat.empty() ? 0.0 : lat[std::min(lat.size() - 1, size_t(q * lat.size()))]; };
  std::printf("clients %d, %.0f s: %ld results (%.1f/s), %ld x 429, %ld wrong answers, %ld without answer; "
              "result latency p50 %.1f ms p99 %.1f ms\n",
              clients, seconds, ok.load(), ok / seconds, busy.load(), wrong.load(), failed.load(), pct(0.5), pct(0.99));
  return (wrong > 0 || failed > 0) ? 1 : 0;
}
