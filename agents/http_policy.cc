// HttpPolicy over libcurl: one easy handle per attempt, failure classification (retryable or not),
// exponential backoff with Retry-After, a shared start-time rate limiter, JSON and SSE reply parsing.
#include "agents/http_policy.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>

namespace k2::agents {

HttpClock HttpClock::Real() {
  return {[] { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); },
          [](double s) {
            if (s > 0) std::this_thread::sleep_for(std::chrono::duration<double>(s));
          }};
}

namespace {

// "malformed_tool_call: ..." when any call's arguments are not a JSON object.
void CheckToolCalls(PolicyTurn& t) {
  for (size_t i = 0; i < t.message.tool_calls.size(); ++i) {
    const auto& c = t.message.tool_calls[i];
    std::string problem;
    if (c.name.empty()) problem = "call " + std::to_string(i) + " has no function name";
    else if (!c.ParsedArguments()) problem = "arguments of call " + std::to_string(i) + " (" + c.name + ") are not a JSON object";
    if (!problem.empty() && !t.failure) t.failure = "malformed_tool_call: " + problem;
  }
}

Status Malformed(const std::string& what) { return Corruption("malformed_response: " + what); }

Expected<std::string> ArgumentsText(const json& a, const std::string& where) {
  if (a.is_string()) return a.get<std::string>();
  if (a.is_object()) return a.dump();  // some servers send an object; keep it as text
  if (a.is_null()) return std::string();
  return Malformed(where + ": expected a string");
}

}  // namespace

Expected<PolicyTurn> ParseChatCompletion(const json& reply) {
  if (!reply.is_object()) return Malformed(std::string("reply: expected an object, got ") + JsonTypeName(reply));
  if (!reply.contains("choices") || !reply["choices"].is_array() || reply["choices"].empty())
    return Malformed("reply.choices: expected a non-empty array");
  const json& ch = reply["choices"][0];
  if (!ch.is_object() || !ch.contains("message") || !ch["message"].is_object())
    return Malformed("reply.choices[0].message: expected an object");
  const json& m = ch["message"];
  PolicyTurn t;
  t.message.role = "assistant";
  if (m.contains("content") && !m["content"].is_null()) {
    if (!m["content"].is_string()) return Malformed("reply.choices[0].message.content: expected a string or null");
    t.message.content = m["content"];
  }
  if (m.contains("tool_calls") && !m["tool_calls"].is_null()) {
    const json& calls = m["tool_calls"];
    if (!calls.is_array()) return Malformed("reply.choices[0].message.tool_calls: expected an array");
    for (size_t i = 0; i < calls.size(); ++i) {
      const std::string w = "reply.choices[0].message.tool_calls[" + std::to_string(i) + "]";
      const json& c = calls[i];
      if (!c.is_object() || !c.contains("function") || !c["function"].is_object()) return Malformed(w + ".function: expected an object");
      ToolCall tc;
      tc.id = c.value("id", json("")).is_string() ? c.value("id", "") : "";
      if (tc.id.empty()) tc.id = "call_" + std::to_string(i);
      const json& f = c["function"];
      if (f.contains("name") && f["name"].is_string()) tc.name = f["name"];
      K2_ASSIGN_OR_RETURN(tc.arguments, ArgumentsText(f.value("arguments", json()), w + ".function.arguments"));
      t.message.tool_calls.push_back(std::move(tc));
    }
  }
  if (ch.contains("finish_reason") && ch["finish_reason"] == "length") t.truncated = true;
  // `k2gym serve` names malformed model output (the engine policy's PolicyTurn::failure) in its own
  // field; the trajectory records it as an in-process run does.
  if (ch.contains("k2gym_failure") && ch["k2gym_failure"].is_string()) t.failure = ch["k2gym_failure"].get<std::string>();
  if (reply.contains("usage") && reply["usage"].is_object()) {
    const json& u = reply["usage"];
    if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number_integer()) t.prompt_tokens = u["prompt_tokens"];
    if (u.contains("completion_tokens") && u["completion_tokens"].is_number_integer()) t.completion_tokens = u["completion_tokens"];
  }
  CheckToolCalls(t);
  return t;
}

Expected<PolicyTurn> ParseChatCompletionStream(const std::string& body) {
  PolicyTurn t;
  t.message.role = "assistant";
  std::map<int64_t, ToolCall> calls;
  bool done = false;
  size_t pos = 0;
  int frame = 0;
  while (pos < body.size() && !done) {
    size_t eol = body.find('\n', pos);
    if (eol == std::string::npos) eol = body.size();
    std::string line = body.substr(pos, eol - pos);
    pos = eol + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("data:", 0) != 0) continue;  // comments, event:, blank separators
    std::string data = line.substr(5);
    if (!data.empty() && data[0] == ' ') data.erase(0, 1);
    if (data == "[DONE]") {
      done = true;
      break;
    }
    ++frame;
    auto j = ParseJson(data, "SSE frame " + std::to_string(frame));
    if (!j.ok()) return Malformed(j.status().message());
    if (j->contains("usage") && (*j)["usage"].is_object()) {
      const json& u = (*j)["usage"];
      if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number_integer()) t.prompt_tokens = u["prompt_tokens"];
      if (u.contains("completion_tokens") && u["completion_tokens"].is_number_integer()) t.completion_tokens = u["completion_tokens"];
    }
    if (!j->contains("choices") || !(*j)["choices"].is_array() || (*j)["choices"].empty()) continue;
    const json& ch = (*j)["choices"][0];
    if (ch.contains("finish_reason") && ch["finish_reason"] == "length") t.truncated = true;
    if (ch.contains("k2gym_failure") && ch["k2gym_failure"].is_string()) t.failure = ch["k2gym_failure"].get<std::string>();
    if (!ch.contains("delta") || !ch["delta"].is_object()) continue;
    const json& d = ch["delta"];
    if (d.contains("content") && d["content"].is_string()) t.message.content += d["content"].get<std::string>();
    if (d.contains("tool_calls") && d["tool_calls"].is_array()) {
      for (const auto& c : d["tool_calls"]) {
        int64_t idx = c.contains("index") && c["index"].is_number_integer() ? c["index"].get<int64_t>() : 0;
        ToolCall& tc = calls[idx];
        if (c.contains("id") && c["id"].is_string()) tc.id = c["id"];
        if (c.contains("function") && c["function"].is_object()) {
          const json& f = c["function"];
          if (f.contains("name") && f["name"].is_string()) tc.name += f["name"].get<std::string>();
          if (f.contains("arguments") && f["arguments"].is_string()) tc.arguments += f["arguments"].get<std::string>();
        }
      }
    }
  }
  if (!done) return Corruption("truncated_stream: the event stream ended after " + std::to_string(frame) + " frames without [DONE]");
  for (auto& [idx, c] : calls) {
    if (c.id.empty()) c.id = "call_" + std::to_string(idx);
    t.message.tool_calls.push_back(std::move(c));
  }
  CheckToolCalls(t);
  return t;
}

namespace {

size_t WriteBody(char* p, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(p, size * n);
  return size * n;
}

size_t WriteHeader(char* p, size_t size, size_t n, void* user) {
  std::string line(p, size * n);
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string k = line.substr(0, colon), v = line.substr(colon + 1);
    std::transform(k.begin(), k.end(), k.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.erase(0, 1);
    while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.pop_back();
    (*headers)[k] = v;
  }
  return size * n;
}

struct Attempt {
  std::optional<PolicyTurn> turn;
  std::string kind, detail;
  bool retryable = false;
  double retry_after_s = -1;
};

void EnsureCurlGlobal() {
  static const bool ok = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
  (void)ok;
}

}  // namespace

HttpPolicy::HttpPolicy(HttpPolicyConfig config, std::string api_key, HttpClock clock)
    : config_(std::move(config)), api_key_(std::move(api_key)), clock_(std::move(clock)) {}

HttpPolicy::~HttpPolicy() = default;

Expected<std::unique_ptr<HttpPolicy>> HttpPolicy::Create(const HttpPolicyConfig& config, HttpClock clock) {
  if (config.base_url.rfind("http://", 0) != 0 && config.base_url.rfind("https://", 0) != 0)
    return InvalidArgument("openai.base_url: expected an http:// or https:// URL, got " + json(config.base_url).dump());
  EnsureCurlGlobal();
  std::string key;
  if (!config.api_key_env.empty())
    if (const char* k = std::getenv(config.api_key_env.c_str())) key = k;
  HttpPolicyConfig c = config;
  while (!c.base_url.empty() && c.base_url.back() == '/') c.base_url.pop_back();
  return std::unique_ptr<HttpPolicy>(new HttpPolicy(std::move(c), std::move(key), std::move(clock)));
}

json HttpPolicy::RequestBody(const PolicyRequest& r) const {
  json body = {{"model", config_.model}, {"messages", k2::ToJson(r.messages)}};
  if (r.tools.is_array() && !r.tools.empty()) body["tools"] = r.tools;
  if (r.temperature) body["temperature"] = *r.temperature;
  if (r.top_p) body["top_p"] = *r.top_p;
  if (r.top_k) body["top_k"] = *r.top_k;  // vLLM/SGLang extension; OpenAI ignores unknown sampling keys
  if (r.max_tokens) body["max_tokens"] = *r.max_tokens;
  // JSON numbers beyond 2^53 lose precision in many servers: send the low 31 bits.
  body["seed"] = static_cast<int64_t>(r.seed & 0x7fffffff);
  if (config_.stream) {
    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
  }
  return body;
}

void HttpPolicy::WaitForRateLimit() {
  if (config_.rate_limit_rps <= 0) return;
  double wait;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const double now = clock_.now();
    const double slot = std::max(now, next_slot_);
    next_slot_ = slot + 1.0 / config_.rate_limit_rps;
    wait = slot - now;
  }
  if (wait > 0) clock_.sleep(wait);
}

void HttpPolicy::CountFailure(const std::string& kind) {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.failures[kind]++;
}

HttpPolicy::Stats HttpPolicy::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

Expected<PolicyTurn> HttpPolicy::Act(const PolicyRequest& request) {
  const double t0 = clock_.now();
  const std::string url = config_.base_url + "/chat/completions";
  const std::string payload = RequestBody(request).dump();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.requests++;
  }
  std::vector<std::string> retried;
  Attempt a;
  for (int attempt = 0; attempt <= config_.max_retries; ++attempt) {
    if (attempt > 0) {
      double delay = std::min(config_.backoff_max_s, config_.backoff_s * static_cast<double>(1LL << std::min(attempt - 1, 30)));
      if (a.retry_after_s >= 0) delay = std::min(config_.backoff_max_s, std::max(delay, a.retry_after_s));
      clock_.sleep(delay);
    }
    WaitForRateLimit();
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.attempts++;
    }
    a = Attempt{};
    CURL* h = curl_easy_init();
    if (!h) return Internal("openai policy: curl_easy_init failed");
    std::string body;
    std::map<std::string, std::string> headers;
    curl_slist* hdrs = nullptr;
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    if (config_.stream) hdrs = curl_slist_append(hdrs, "Accept: text/event-stream");
    if (!api_key_.empty()) hdrs = curl_slist_append(hdrs, ("Authorization: Bearer " + api_key_).c_str());
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(payload.size()));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, WriteBody);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, WriteHeader);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &headers);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(config_.timeout_s * 1000));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(config_.connect_timeout_s * 1000));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM-based timeouts
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);

    if (rc != CURLE_OK) {
      a.kind = rc == CURLE_OPERATION_TIMEDOUT ? "timeout" : (rc == CURLE_COULDNT_CONNECT ? "connect" : "transport");
      // A stream cut mid-body (server closed the chunked transfer) is a truncated stream.
      if (config_.stream && status == 200 && rc == CURLE_PARTIAL_FILE) a.kind = "truncated_stream";
      a.detail = std::string(curl_easy_strerror(rc)) + " (" + url + ")";
      a.retryable = true;
    } else if (status == 429 || status >= 500) {
      a.kind = "http_" + std::to_string(status);
      a.detail = body.substr(0, 300);
      a.retryable = true;
      if (auto it = headers.find("retry-after"); it != headers.end()) {
        char* end = nullptr;
        double v = std::strtod(it->second.c_str(), &end);
        if (end != it->second.c_str() && v >= 0) a.retry_after_s = v;
      }
    } else if (status != 200) {
      a.kind = "http_" + std::to_string(status);
      a.detail = body.substr(0, 300);
      a.retryable = false;  // the request itself is wrong: retrying cannot help
    } else {
      Expected<PolicyTurn> t = Malformed("unparsed");
      const bool sse = config_.stream || body.rfind("data:", 0) == 0;
      if (sse) {
        t = ParseChatCompletionStream(body);
      } else {
        auto j = ParseJson(body, "reply body");
        t = j.ok() ? ParseChatCompletion(*j) : Expected<PolicyTurn>(Malformed(j.status().message()));
      }
      if (t.ok()) {
        a.turn = std::move(*t);
      } else {
        const std::string& m = t.status().message();
        size_t colon = m.find(':');
        a.kind = m.substr(0, colon);
        a.detail = colon == std::string::npos ? m : m.substr(colon + 2);
        a.retryable = true;  // a garbled reply is usually transient (proxy, overload)
      }
    }
    if (a.turn) break;
    CountFailure(a.kind);
    retried.push_back(a.kind + ": " + a.detail);
    if (!a.retryable) break;
  }
  if (!a.turn) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.failed++;
    }
    const std::string msg = "openai policy: " + a.kind + " after " + std::to_string(retried.size()) + " attempt(s): " + a.detail;
    return a.retryable ? Unavailable(msg) : InvalidArgument(msg);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.succeeded++;
  }
  PolicyTurn t = std::move(*a.turn);
  t.retries = std::move(retried);
  t.latency_s = clock_.now() - t0;
  return t;
}

}  // namespace k2::agents
