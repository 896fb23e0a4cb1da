// k2::http::Server: routing of requests to the handler, size caps (413/431), header deadline (408),
// malformed input (400), the bounded queue (429), chunked/SSE streaming and graceful stop.
#include "core/http/server.h"

#include <poll.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "tests/sandbox/http_client.h"

namespace k2::http {
namespace {

using testing::Get;
using testing::Post;
using testing::Send;

std::unique_ptr<Server> Echo(ServerOptions o = {}) {
  auto s = Server::Start(o, [](const Request& r) {
    return Response::Text(200, r.method + " " + r.Path() + " " + r.Header("X-Test") + " " + r.body);
  });
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(*s);
}

TEST(HttpServer, BindsAnEphemeralLoopbackPortAndCallsTheHandler) {
  auto s = Echo();
  EXPECT_GT(s->port(), 0);
  EXPECT_EQ(s->address(), "127.0.0.1:" + std::to_string(s->port()));
  auto r = Post(s->port(), "/a/b?q=1", "hello", "X-Test: yes\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "POST /a/b yes hello");
  EXPECT_NE(r.head.find("Content-Length: 19"), std::string::npos) << r.head;
  auto g = Get(s->port(), "/x");
  EXPECT_EQ(g.body, "GET /x  ");
}

TEST(HttpServer, RejectsBadBindAddressAndPort) {
  ServerOptions o;
  o.bind = "not-an-ip";
  EXPECT_FALSE(Server::Start(o, [](const Request&) { return Response{}; }).ok());
  o.bind = "127.0.0.1";
  o.port = 70000;
  EXPECT_FALSE(Server::Start(o, [](const Request&) { return Response{}; }).ok());
}

TEST(HttpServer, BodyOverTheCapGets413AndHugeHeaderGets431) {
  ServerOptions o;
  o.max_body_bytes = 1000;
  o.max_header_bytes = 2000;
  auto s = Echo(o);
  EXPECT_EQ(Post(s->port(), "/", std::string(1001, 'x')).status, 413);
  EXPECT_EQ(Post(s->port(), "/", std::string(1000, 'x')).status, 200);
  EXPECT_EQ(Get(s->port(), "/", "X-Big: " + std::string(5000, 'h') + "\r\n").status, 431);
}

TEST(HttpServer, MalformedRequestGets400) {
  auto s = Echo();
  EXPECT_EQ(Send(s->port(), "THIS IS NOT HTTP\r\n\r\n").status, 400);
  EXPECT_EQ(Send(s->port(), "POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n").status, 400);
}

TEST(HttpServer, SlowHeaderGets408) {
  ServerOptions o;
  o.header_timeout_s = 0.3;
  auto s = Echo(o);
  int fd = testing::Connect(s->port());
  ASSERT_GE(fd, 0);
  ::send(fd, "GET / HTTP/1.1\r\n", 16, MSG_NOSIGNAL);  // never finishes the header
  auto r = testing::ReadReply(fd, 5000);
  EXPECT_EQ(r.status, 408);
}

TEST(HttpServer, FullQueueAnswers429AndEveryRequestGetsAnAnswer) {
  ServerOptions o;
  o.max_concurrent = 1;
  o.max_queue = 2;
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  auto s = Server::Start(o, [&](const Request&) {
    std::unique_lock<std::mutex> lk(mu);
    cv.wait(lk, [&] { return release; });
    return Response::Text(200, "done");
  });
  ASSERT_TRUE(s.ok());
  int port = (*s)->port();
  std::vector<std::thread> clients;
  std::vector<int> codes(8, 0);
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&, i] { codes[i] = Post(port, "/", "x").status; });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // deterministic arrival order
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  {
    std::lock_guard<std::mutex> lk(mu);
    release = true;
  }
  cv.notify_all();
  for (auto& t : clients) t.join();
  int ok = 0, busy = 0;
  for (int c : codes) {
    ok += c == 200;
    busy += c == 429;
  }
  EXPECT_EQ(ok, 3);  // one in flight + two queued
  EXPECT_EQ(busy, 5);
  EXPECT_EQ((*s)->stats().rejected_429, 5);
}

TEST(HttpServer, StreamsChunkedServerSentEvents) {
  auto s = Server::Start({}, [](const Request&) {
    return Response::Sse([](const ChunkWriter& w) {
      for (int i = 0; i < 3; ++i) {
        if (!w("data: " + std::to_string(i) + "\n\n")) return;
      }
    });
  });
  ASSERT_TRUE(s.ok());
  auto r = Get((*s)->port(), "/events");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.head.find("Transfer-Encoding: chunked"), std::string::npos);
  EXPECT_NE(r.head.find("text/event-stream"), std::string::npos);
  EXPECT_EQ(r.body, "9\r\ndata: 0\n\n\r\n9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n0\r\n\r\n");
}

TEST(HttpServer, StopFinishesInFlightRequestsAndRefusesNewOnes) {
  std::atomic<bool> entered{false};
  auto s = Server::Start({}, [&](const Request&) {
    entered = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return Response::Text(200, "finished");
  });
  ASSERT_TRUE(s.ok());
  int port = (*s)->port();
  testing::Reply r;
  std::thread c([&] { r = Post(port, "/", "x"); });
  while (!entered) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  (*s)->Stop();
  c.join();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "finished");
  EXPECT_EQ(testing::Connect(port), -1);
  (*s)->Stop();  // idempotent
}

TEST(HttpServer, AThrowingHandlerGives500) {
  auto s = Server::Start({}, [](const Request&) -> Response { throw std::runtime_error("x"); });
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(Get((*s)->port(), "/").status, 500);
  EXPECT_EQ(Get((*s)->port(), "/").status, 500);  // and keeps serving
}

// The header deadline counts from accept: a client dripping a byte every 50 ms does not renew it, and
// connections waiting while every worker is busy do not get a fresh one either.
TEST(HttpServer, ReadDeadlineCountsFromAcceptAndHoldsNoWorker) {
  ServerOptions o;
  o.header_timeout_s = 0.5;
  o.max_concurrent = 1;
  std::atomic<bool> release{false};
  auto s = Server::Start(o, [&](const Request& r) {
    while (r.Path() == "/block" && !release) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return Response::Text(200, "ok");
  });
  ASSERT_TRUE(s.ok());
  int port = (*s)->port();
  std::thread blocker([&] { Get(port, "/block"); });  // the only worker is busy from now on
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  int fd = testing::Connect(port);
  ASSERT_GE(fd, 0);
  auto t0 = std::chrono::steady_clock::now();
  const std::string head = "GET / HTTP/1.1\r\nX-Slow: ";
  for (int i = 0; i < 40; ++i) {  // 2 s of dripping, 4x the deadline
    if (::send(fd, &head[i % head.size()], 1, MSG_NOSIGNAL) != 1) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) > 0) break;  // answered
  }
  auto r = testing::ReadReply(fd, 3000);
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.status, 408);
  EXPECT_LT(waited, 1.9) << "the deadline was renewed by the client's progress";
  // A complete request still gets its answer once the worker is free.
  std::thread normal([&] { EXPECT_EQ(Get(port, "/").status, 200); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  release = true;
  blocker.join();
  normal.join();
}

}  // namespace
}  // namespace k2::http
