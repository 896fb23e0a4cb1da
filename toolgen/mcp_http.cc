// The Streamable HTTP MCP transport (libcurl): each client message is one POST; the reply is a JSON body
// or an SSE stream whose `data:` events are JSON-RPC messages. Keeps the Mcp-Session-Id the server assigns.
//
// Simplification, stated: we do not open the optional GET stream for unsolicited server messages; every
// message the server sends arrives on the POST it answers (what tools/list and tools/call need).
#include <curl/curl.h>

#include <algorithm>
#include <deque>
#include <mutex>

#include "toolgen/mcp_transport.h"

namespace k2::toolgen::mcp {
namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string Trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  size_t b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

struct Exchange {
  std::string body;
  std::string content_type;
  std::string session_id;
  size_t max = 0;
  bool oversize = false;
  const std::atomic<bool>* cancel = nullptr;
};

size_t OnBody(char* p, size_t size, size_t n, void* ud) {
  auto* x = static_cast<Exchange*>(ud);
  if (x->body.size() + size * n > x->max) {
    x->oversize = true;
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  x->body.append(p, size * n);
  return size * n;
}

size_t OnHeader(char* p, size_t size, size_t n, void* ud) {
  auto* x = static_cast<Exchange*>(ud);
  std::string line(p, size * n);
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string key = Lower(Trim(line.substr(0, colon)));
    std::string value = Trim(line.substr(colon + 1));
    if (key == "content-type") x->content_type = Lower(value);
    if (key == "mcp-session-id") x->session_id = value;
  }
  return size * n;
}

int OnProgress(void* ud, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* x = static_cast<Exchange*>(ud);
  return (x->cancel && x->cancel->load()) ? 1 : 0;
}

class HttpTransport final : public Transport {
 public:
  explicit HttpTransport(HttpOptions o) : opt_(std::move(o)) {}
  ~HttpTransport() override { Close(); }

  Status Init() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    curl_ = curl_easy_init();
    if (!curl_) return Internal("mcp http: curl_easy_init failed");
    return Status::Ok();
  }

  Status Send(const json& message, const Wait& wait) override {
    if (!curl_) return Unavailable("mcp http: transport closed");
    Exchange x;
    x.max = opt_.max_message_bytes;
    x.cancel = wait.cancel;
    std::string payload = message.dump(-1, ' ', false, json::error_handler_t::replace);
    long code = 0;
    K2_RETURN_IF_ERROR(Perform("POST", payload, wait, &x, &code));
    if (!x.session_id.empty()) session_id_ = x.session_id;
    if (code == 202 || code == 204) return Status::Ok();  // accepted notification or response
    if (code == 404 && !session_id_.empty())
      return Unavailable("mcp http: " + opt_.url + " answered 404 for session " + session_id_ + " (session expired)");
    if (code < 200 || code >= 300)
      return Unavailable("mcp http: " + opt_.url + " answered HTTP " + std::to_string(code) + ": " +
                         x.body.substr(0, 200));
    if (x.content_type.rfind("text/event-stream", 0) == 0) return ParseSse(x.body);
    if (x.body.find_first_not_of(" \t\r\n") == std::string::npos) return Status::Ok();
    auto j = ParseJson(x.body, opt_.url + " response body");
    if (!j.ok()) return Corruption("mcp http: " + j.status().message());
    if (j->is_array()) {
      for (auto& m : *j) inbox_.push_back(m);
    } else {
      inbox_.push_back(std::move(*j));
    }
    return Status::Ok();
  }

  Expected<json> Receive(const Wait& wait) override {
    if (!inbox_.empty()) {
      json m = std::move(inbox_.front());
      inbox_.pop_front();
      return m;
    }
    if (!curl_) return Unavailable("mcp http: transport closed");
    // Replies arrive only on the POST they answer; nothing queued means nothing is coming.
    return Timeout("mcp http: " + opt_.url + " sent no reply for the request");
  }

  void SetProtocolVersion(const std::string& version) override { protocol_version_ = version; }

  void Close() override {
    if (!curl_) return;
    if (!session_id_.empty()) {  // polite session end; failures do not matter
      Exchange x;
      x.max = 1 << 16;
      long code = 0;
      Wait w{Clock::now() + std::chrono::seconds(2), nullptr};
      (void)Perform("DELETE", "", w, &x, &code);
    }
    curl_easy_cleanup(curl_);
    curl_ = nullptr;
  }

  bool alive() const override { return curl_ != nullptr; }
  std::string Describe() const override { return opt_.url; }

 private:
  Status Perform(const char* method, const std::string& payload, const Wait& wait, Exchange* x, long* code) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(wait.deadline - Clock::now()).count();
    if (ms <= 0) return Timeout("mcp http: deadline passed before sending to " + opt_.url);
    curl_easy_reset(curl_);
    curl_slist* hdrs = nullptr;
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "Accept: application/json, text/event-stream");
    if (!session_id_.empty()) hdrs = curl_slist_append(hdrs, ("Mcp-Session-Id: " + session_id_).c_str());
    if (!protocol_version_.empty()) hdrs = curl_slist_append(hdrs, ("MCP-Protocol-Version: " + protocol_version_).c_str());
    for (auto& [k, v] : opt_.headers) hdrs = curl_slist_append(hdrs, (k + ": " + v).c_str());
    curl_easy_setopt(curl_, CURLOPT_URL, opt_.url.c_str());
    curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, method);
    if (std::string(method) == "POST") {
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, payload.c_str());
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
    }
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, static_cast<long>(ms));
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(curl_, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(curl_, CURLOPT_XFERINFOFUNCTION, OnProgress);
    curl_easy_setopt(curl_, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(curl_, CURLOPT_NOPROGRESS, 0L);
    CURLcode rc = curl_easy_perform(curl_);
    curl_slist_free_all(hdrs);
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, code);
    if (rc == CURLE_OK) return Status::Ok();
    if (x->oversize)
      return ResourceExhausted("mcp http: a reply from " + opt_.url + " exceeds " + std::to_string(x->max) + " bytes");
    if (rc == CURLE_ABORTED_BY_CALLBACK) return Cancelled("mcp http: request to " + opt_.url + " cancelled");
    if (rc == CURLE_OPERATION_TIMEDOUT) return Timeout("mcp http: no reply from " + opt_.url + " before the deadline");
    return Unavailable("mcp http: " + std::string(method) + " " + opt_.url + ": " + curl_easy_strerror(rc));
  }

  // SSE: events separated by a blank line; an event's `data:` lines joined by '\n' form one JSON message.
  Status ParseSse(const std::string& body) {
    std::string data;
    bool have = false;
    size_t pos = 0;
    auto flush = [&]() -> Status {
      if (have && data.find_first_not_of(" \t\r\n") != std::string::npos) {
        auto j = ParseJson(data, opt_.url + " SSE event");
        if (!j.ok()) return Corruption("mcp http: " + j.status().message());
        inbox_.push_back(std::move(*j));
      }
      data.clear();
      have = false;
      return Status::Ok();
    };
    while (pos <= body.size()) {
      size_t nl = body.find('\n', pos);
      std::string line = body.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) {
        K2_RETURN_IF_ERROR(flush());
      } else if (line.rfind("data:", 0) == 0) {
        std::string v = line.substr(5);
        if (!v.empty() && v[0] == ' ') v.erase(0, 1);
        if (have) data += '\n';
        data += v;
        have = true;
      }  // id:, event:, retry: and comments need no action here
      if (nl == std::string::npos) break;
      pos = nl + 1;
    }
    return flush();
  }

  HttpOptions opt_;
  CURL* curl_ = nullptr;
  std::string session_id_;
  std::string protocol_version_;
  std::deque<json> inbox_;
};

}  // namespace

Expected<std::unique_ptr<Transport>> ConnectHttp(const HttpOptions& options) {
  if (options.url.rfind("http://", 0) != 0 && options.url.rfind("https://", 0) != 0)
    return InvalidArgument("mcp http: url must start with http:// or https://, got " + json(options.url).dump());
  auto t = std::make_unique<HttpTransport>(options);
  K2_RETURN_IF_ERROR(t->Init());
  return std::unique_ptr<Transport>(std::move(t));
}

}  // namespace k2::toolgen::mcp
