// OpenAI chat-completions endpoint: request validation (field-named 400s), template rendering, the
// Generator (n samples forked from one prefill), template parsing back into content/tool_calls, and
// SSE streaming of content deltas as tokens are sampled.
#include "engine/gen/openai_server.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <random>

#include "engine/gen/constraint.h"
#include "engine/text/chat_template.h"

namespace k2::gen {

namespace {

json ErrorBody(const std::string& msg, const std::string& type, const std::string& param, const std::string& code) {
  return json{{"error", {{"message", msg}, {"type", type}, {"param", param.empty() ? json() : json(param)},
                         {"code", code.empty() ? json() : json(code)}}}};
}
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }
const char* ErrorType(int status) {
  return status == 401 ? "authentication_error" : status == 403 ? "permission_error"
         : status == 404 ? "not_found_error" : status == 429 ? "rate_limit_error"
         : status >= 500 ? "server_error" : "invalid_request_error";
}
const char* ErrorCode(int status) {
  return status == 408 ? "request_timeout" : status == 413 ? "request_too_large" : status == 429 ? "rate_limit_exceeded"
         : status == 431 ? "headers_too_large" : status >= 500 ? "internal_error" : "";
}
http::Response Error(int status, const std::string& msg, const std::string& param = "",
                     const std::string& code = "") {
  return http::Response::Json(status, Dump(ErrorBody(msg, ErrorType(status), param, code)));
}

// Offset of the first byte that is not part of well-formed UTF-8 (no overlongs, surrogates or code
// points past U+10FFFF), or npos.
size_t FirstInvalidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) len = 3, lo = 0xA0;
    else if (c == 0xED) len = 3, hi = 0x9F;
    else if (c >= 0xE1 && c <= 0xEF) len = 3;
    else if (c == 0xF0) len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) len = 4, hi = 0x8F;
    else return i;
    if (i + static_cast<size_t>(len) > s.size()) return i;
    for (int k = 1; k < len; ++k) {
      const unsigned char d = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
      if (d < (k == 1 ? lo : 0x80) || d > (k == 1 ? hi : 0xBF)) return i;
    }
    i += static_cast<size_t>(len);
  }
  return std::string_view::npos;
}

std::string FieldHoldingMark(const json& j);

// The field (messages[0].content, or "body" when outside any string) holding invalid UTF-8: every bad
// byte becomes a marker character, the repaired body is parsed and the string holding it is found.
std::string FieldWithInvalidUtf8(const std::string& body) {
  static const std::string kMark = "\xEF\xB7\x90";  // U+FDD0, a noncharacter
  std::string fixed;
  size_t i = 0;
  while (i < body.size()) {
    size_t bad = FirstInvalidUtf8(std::string_view(body).substr(i));
    if (bad == std::string_view::npos) {
      fixed.append(body, i, std::string::npos);
      break;
    }
    fixed.append(body, i, bad);
    fixed += kMark;
    i += bad + 1;
  }
  json j = json::parse(fixed, nullptr, false);
  if (j.is_discarded()) return "body";
  return FieldHoldingMark(j);
}

// JSON escapes of UTF-16 surrogates that do not pair up (\ud800 alone) encode no Unicode text: each
// becomes the marker's escape. Returns "" when there is none.
std::string MarkLoneSurrogates(const std::string& body) {
  auto hex4 = [&](size_t at, unsigned* v) {
    if (at + 6 > body.size() || body[at] != '\\' || (body[at + 1] != 'u' && body[at + 1] != 'U')) return false;
    char* end = nullptr;
    std::string h = body.substr(at + 2, 4);
    *v = static_cast<unsigned>(std::strtoul(h.c_str(), &end, 16));
    return end == h.c_str() + 4;
  };
  std::string out;
  bool changed = false;
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] != '\\') {
      out += body[i];
      continue;
    }
    unsigned v = 0, w = 0;
    if (hex4(i, &v) && v >= 0xD800 && v <= 0xDFFF) {
      if (v <= 0xDBFF && hex4(i + 6, &w) && w >= 0xDC00 && w <= 0xDFFF) {
        out.append(body, i, 12);
        i += 11;
      } else {
        out += "\\ufdd0";
        changed = true;
        i += 5;
      }
      continue;
    }
    out += body[i];  // any other escape: copy it and the escaped character
    if (i + 1 < body.size()) out += body[++i];
  }
  return changed ? out : "";
}

std::string FieldHoldingMark(const json& j) {
  static const std::string kMark = "\xEF\xB7\x90";
  std::function<std::string(const json&, const std::string&)> find = [&](const json& v, const std::string& path) -> std::string {
    if (v.is_string()) return v.get_ref<const std::string&>().find(kMark) != std::string::npos ? path : "";
    if (v.is_array()) {
      for (size_t k = 0; k < v.size(); ++k) {
        std::string r = find(v[k], path + "[" + std::to_string(k) + "]");
        if (!r.empty()) return r;
      }
    }
    if (v.is_object()) {
      for (auto it = v.begin(); it != v.end(); ++it) {
        const std::string sub = path.empty() ? it.key() : path + "." + it.key();
        if (it.key().find(kMark) != std::string::npos) return sub;
        std::string r = find(it.value(), sub);
        if (!r.empty()) return r;
      }
    }
    return "";
  };
  std::string f = find(j, "");
  return f.empty() ? "body" : f;
}

// Length of the longest prefix of s that ends on a complete UTF-8 sequence (a streamed delta never
// splits a character).
size_t CompleteUtf8(const std::string& s) {
  size_t n = s.size(), i = n;
  int back = 0;
  while (i > 0 && back < 4) {
    unsigned char c = static_cast<unsigned char>(s[i - 1]);
    if ((c & 0xC0) != 0x80) {  // a lead byte (or ASCII) at i-1
      size_t need = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
      return (n - (i - 1) >= need) ? n : i - 1;
    }
    --i, ++back;
  }
  return n;
}

struct Parsed {
  std::vector<Message> messages;
  json tools = json::array();
  bool tools_hidden = false;
  SamplingParams sampling;
  int64_t n = 1;
  bool stream = false, include_usage = false, logprobs = false;
  bool seeded = false;
  std::string model;
  std::string tool_choice = "auto";  // none | auto | required | the forced function's name (named)
  std::string forced_tool;
  json response_format;              // null, or {"type": "json_object"} / {"type": "json_schema", ...}
};

// Validates the body field by field; the error names the field and what was expected.
Expected<Parsed> ParseBody(const json& b, const OpenAiOptions& opt, int64_t vocab) {
  Parsed p;
  if (!b.is_object()) return InvalidArgument("body: expected a JSON object");
  if (b.contains("model") && !b["model"].is_null()) {
    if (!b["model"].is_string()) return InvalidArgument("model: expected a string");
    p.model = b["model"];
  }
  if (!b.contains("messages")) return InvalidArgument("messages: required");
  const json& ms = b["messages"];
  if (!ms.is_array() || ms.empty()) return InvalidArgument("messages: expected a non-empty array");
  for (size_t i = 0; i < ms.size(); ++i) {
    json m = ms[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return InvalidArgument(where + ": expected an object");
    if (m.contains("content")) {
      json& c = m["content"];
      if (c.is_null()) {
        c = "";
      } else if (c.is_array()) {  // content parts: only text is supported
        std::string t;
        for (size_t k = 0; k < c.size(); ++k) {
          if (!c[k].is_object() || c[k].value("type", "") != "text" || !c[k].contains("text") || !c[k]["text"].is_string())
            return InvalidArgument(where + ".content[" + std::to_string(k) + "]: expected {\"type\": \"text\", \"text\": string}");
          t += c[k]["text"].get<std::string>();
        }
        c = t;
      }
    }
    m.erase("refusal");
    if (m.contains("role") && m["role"] == "developer") m["role"] = "system";  // OpenAI's newer name for it
    auto msg = MessageFromJson(m, where);
    if (!msg.ok()) return msg.status();
    if (msg->role != "system" && msg->role != "user" && msg->role != "assistant" && msg->role != "tool")
      return InvalidArgument(where + ".role: expected system, developer, user, assistant or tool, got \"" + msg->role + "\"");
    p.messages.push_back(std::move(*msg));
  }
  if (b.contains("tools") && !b["tools"].is_null()) {
    if (!b["tools"].is_array()) return InvalidArgument("tools: expected an array");
    p.tools = b["tools"];
    auto names = text::DeclaredToolNames(p.tools);
    if (!names.ok()) return names.status();
  }
  if (b.contains("tool_choice") && !b["tool_choice"].is_null()) {
    const json& tc = b["tool_choice"];
    if (tc.is_string()) {
      const std::string v = tc;
      if (v != "none" && v != "auto" && v != "required")
        return InvalidArgument("tool_choice: expected \"none\", \"auto\", \"required\" or a function object");
      if (v == "none") p.tools_hidden = true;
      if (v == "required" && p.tools.empty()) return InvalidArgument("tool_choice: \"required\" needs tools");
      p.tool_choice = v;
    } else if (tc.is_object() && tc.value("type", "") == "function" && tc.contains("function") &&
               tc["function"].is_object() && tc["function"].contains("name") && tc["function"]["name"].is_string()) {
      auto names = text::DeclaredToolNames(p.tools);
      const std::string want = tc["function"]["name"];
      if (!names.ok() || std::find(names->begin(), names->end(), want) == names->end())
        return InvalidArgument("tool_choice.function.name: \"" + want + "\" is not among the declared tools");
      p.tool_choice = "named";
      p.forced_tool = want;
    } else {
      return InvalidArgument("tool_choice: expected a string or {\"type\": \"function\", \"function\": {\"name\"}}");
    }
  }
  auto number = [&](const char* k, double lo, double hi, bool lo_open, double* out) -> Status {
    if (!b.contains(k) || b[k].is_null()) return Status::Ok();
    if (!b[k].is_number()) return InvalidArgument(std::string(k) + ": expected a number");
    const double v = b[k];
    if (!(lo_open ? v > lo : v >= lo) || !(v <= hi))
      return InvalidArgument(std::string(k) + ": expected a number in " + (lo_open ? "(" : "[") + std::to_string(lo) +
                             ", " + std::to_string(hi) + "], got " + b[k].dump());
    *out = v;
    return Status::Ok();
  };
  auto integer = [&](const char* k, int64_t lo, int64_t hi, int64_t* out) -> Status {
    if (!b.contains(k) || b[k].is_null()) return Status::Ok();
    if (!b[k].is_number_integer()) return InvalidArgument(std::string(k) + ": expected an integer");
    const int64_t v = b[k];
    if (v < lo || v > hi)
      return InvalidArgument(std::string(k) + ": expected an integer in [" + std::to_string(lo) + ", " +
                             std::to_string(hi) + "], got " + std::to_string(v));
    *out = v;
    return Status::Ok();
  };
  K2_RETURN_IF_ERROR(number("temperature", 0, 2, false, &p.sampling.temperature));
  K2_RETURN_IF_ERROR(number("top_p", 0, 1, true, &p.sampling.top_p));
  K2_RETURN_IF_ERROR(integer("top_k", 0, int64_t{1} << 30, &p.sampling.top_k));
  p.sampling.max_new_tokens = opt.default_max_tokens;
  K2_RETURN_IF_ERROR(integer("max_tokens", 1, int64_t{1} << 30, &p.sampling.max_new_tokens));
  K2_RETURN_IF_ERROR(integer("max_completion_tokens", 1, int64_t{1} << 30, &p.sampling.max_new_tokens));
  K2_RETURN_IF_ERROR(integer("n", 1, opt.max_n, &p.n));
  if (b.contains("seed") && !b["seed"].is_null()) {
    if (!b["seed"].is_number_integer()) return InvalidArgument("seed: expected an integer");
    p.sampling.seed = b["seed"].is_number_unsigned() ? b["seed"].get<uint64_t>()
                                                     : static_cast<uint64_t>(b["seed"].get<int64_t>());
    p.seeded = true;
  }
  K2_RETURN_IF_ERROR(number("frequency_penalty", -2, 2, false, &p.sampling.frequency_penalty));
  K2_RETURN_IF_ERROR(number("presence_penalty", -2, 2, false, &p.sampling.presence_penalty));
  if (b.contains("logit_bias") && !b["logit_bias"].is_null()) {
    const json& lb = b["logit_bias"];
    if (!lb.is_object()) return InvalidArgument("logit_bias: expected an object mapping token ids to biases");
    if (lb.size() > 1024) return InvalidArgument("logit_bias: at most 1024 entries");
    for (auto it = lb.begin(); it != lb.end(); ++it) {
      const std::string& k = it.key();
      char* end = nullptr;
      const long id = std::strtol(k.c_str(), &end, 10);
      if (k.empty() || *end != '\0' || id < 0 || id >= vocab)
        return InvalidArgument("logit_bias." + k + ": expected a token id in [0, " + std::to_string(vocab) + ")");
      if (!it.value().is_number() || !(it.value().get<double>() >= -100 && it.value().get<double>() <= 100))
        return InvalidArgument("logit_bias." + k + ": expected a number in [-100, 100]");
      p.sampling.logit_bias.push_back({static_cast<int32_t>(id), it.value().get<float>()});
    }
  }
  if (b.contains("response_format") && !b["response_format"].is_null()) {
    const json& rf = b["response_format"];
    if (!rf.is_object() || !rf.contains("type") || !rf["type"].is_string())
      return InvalidArgument("response_format: expected {\"type\": \"text\" | \"json_object\" | \"json_schema\"}");
    const std::string t = rf["type"];
    if (t == "json_schema") {
      if (!rf.contains("json_schema") || !rf["json_schema"].is_object() || !rf["json_schema"].contains("name") ||
          !rf["json_schema"]["name"].is_string())
        return InvalidArgument("response_format.json_schema: expected {\"name\": string, \"schema\": object}");
      if (rf["json_schema"].contains("schema") && !rf["json_schema"]["schema"].is_object())
        return InvalidArgument("response_format.json_schema.schema: expected a JSON Schema object");
    } else if (t != "text" && t != "json_object") {
      return InvalidArgument("response_format.type: expected \"text\", \"json_object\" or \"json_schema\", got \"" + t + "\"");
    }
    if (t != "text") p.response_format = rf;
  }
  if (b.contains("stop") && !b["stop"].is_null()) {
    const json& s = b["stop"];
    if (s.is_string()) {
      p.sampling.stop_strings.push_back(s);
    } else if (s.is_array() && s.size() <= 4) {
      for (auto& x : s) {
        if (!x.is_string() || x.get<std::string>().empty()) return InvalidArgument("stop: expected non-empty strings");
        p.sampling.stop_strings.push_back(x);
      }
    } else {
      return InvalidArgument("stop: expected a string or an array of at most 4 strings");
    }
    for (auto& x : p.sampling.stop_strings)
      if (x.empty()) return InvalidArgument("stop: expected non-empty strings");
  }
  auto boolean = [&](const char* k, bool* out) -> Status {
    if (!b.contains(k) || b[k].is_null()) return Status::Ok();
    if (!b[k].is_boolean()) return InvalidArgument(std::string(k) + ": expected true or false");
    *out = b[k];
    return Status::Ok();
  };
  K2_RETURN_IF_ERROR(boolean("stream", &p.stream));
  K2_RETURN_IF_ERROR(boolean("logprobs", &p.logprobs));
  int64_t top = -1;
  K2_RETURN_IF_ERROR(integer("top_logprobs", 0, 20, &top));
  if (top >= 0 && !p.logprobs) return InvalidArgument("top_logprobs: requires logprobs: true");
  if (p.logprobs) p.sampling.top_logprobs = std::max<int64_t>(top, 0);
  if (b.contains("stream_options") && !b["stream_options"].is_null()) {
    const json& so = b["stream_options"];
    if (!so.is_object()) return InvalidArgument("stream_options: expected an object");
    if (so.contains("include_usage")) {
      if (!so["include_usage"].is_boolean()) return InvalidArgument("stream_options.include_usage: expected true or false");
      p.include_usage = so["include_usage"];
    }
  }
  return p;
}

std::string ParamOf(const Status& s) {
  const std::string& m = s.message();
  size_t end = m.find_first_of(":[. ");
  return end == std::string::npos ? "" : m.substr(0, end);
}

// What one sample becomes in the response.
struct Choice {
  std::string content;
  std::vector<ToolCall> calls;
  std::string finish;
  std::optional<std::string> failure;
};

}  // namespace

OpenAiService::OpenAiService(Generator* gen, const text::Tokenizer* tok, OpenAiOptions opt)
    : gen_(gen), tok_(tok), opt_(std::move(opt)) {}

Expected<std::unique_ptr<http::Server>> OpenAiService::Listen() {
  http::ServerOptions o = opt_.http;
  o.error_body = [](int status, const std::string& msg) {
    return Dump(ErrorBody(msg, ErrorType(status), "", ErrorCode(status)));
  };
  return http::Server::Start(o, [this](const http::Request& r) { return Handle(r); });
}

bool OpenAiService::Serves(const std::string& name) const {
  // "default" is what k2gym's own OpenAI clients send when no model is configured (agents/http_policy.h).
  if (name == "default") return true;
  return name == opt_.model_name || std::find(opt_.aliases.begin(), opt_.aliases.end(), name) != opt_.aliases.end();
}

http::Response OpenAiService::Handle(const http::Request& req) {
  const std::string path = req.Path();
  if (path == "/health") {
    if (req.method != "GET") return Error(405, "use GET for /health");
    auto st = gen_->stats();
    return http::Response::Json(200, Dump({{"status", "ok"}, {"running", st.running}, {"queued", st.queued},
                                           {"free_kv_pages", st.free_pages}}));
  }
  auto model_obj = [](const std::string& id) {
    return json{{"id", id}, {"object", "model"}, {"created", 0}, {"owned_by", "k2gym"}};
  };
  if (path == "/v1/models") {
    if (req.method != "GET") return Error(405, "use GET for /v1/models");
    json data = json::array({model_obj(opt_.model_name)});
    for (auto& a : opt_.aliases) data.push_back(model_obj(a));
    return http::Response::Json(200, Dump({{"object", "list"}, {"data", data}}));
  }
  if (path.rfind("/v1/models/", 0) == 0) {
    if (req.method != "GET") return Error(405, "use GET for /v1/models/{model}");
    const std::string id = path.substr(11);
    if (!Serves(id))
      return Error(404, "The model '" + id + "' does not exist (serving '" + opt_.model_name + "')", "model",
                   "model_not_found");
    return http::Response::Json(200, Dump(model_obj(id)));
  }
  if (path == "/v1/chat/completions") {
    if (req.method != "POST") return Error(405, "use POST for /v1/chat/completions");
    return ChatCompletions(req);
  }
  return Error(404, "unknown path " + path + " (serving /v1/chat/completions, /v1/models, /health)");
}

namespace {

constexpr size_t kRememberedOutputs = 4096;

// A returned assistant message as a client sends it back: content (invalid UTF-8 replaced as the JSON
// reply carried it) and each call's name and arguments; call ids are the client's to rewrite.
std::string OutputKey(const Message& m) {
  json calls = json::array();
  for (const auto& c : m.tool_calls) calls.push_back({c.name, c.arguments});
  return Dump(json{{"content", m.content}, {"calls", calls}});
}

}  // namespace

void OpenAiService::Remember(const Message& m, const std::vector<int32_t>& tokens) {
  std::vector<int32_t> ids = tokens;
  const int32_t im_end = tok_->SpecialId(text::kImEnd);
  if (ids.empty() || ids.back() != im_end) ids.push_back(im_end);  // the template closes a cut-off turn
  const std::string key = OutputKey(m);
  std::lock_guard<std::mutex> l(out_mu_);
  if (outputs_.insert_or_assign(key, std::move(ids)).second) output_order_.push_back(key);
  while (output_order_.size() > kRememberedOutputs) {
    outputs_.erase(output_order_.front());
    output_order_.pop_front();
  }
}

Expected<text::RenderedChat> OpenAiService::Render(const std::vector<Message>& messages, const json& tools) const {
  text::RenderOptions ro;
  ro.add_generation_prompt = true;
  K2_ASSIGN_OR_RETURN(text::RenderedChat full, text::RenderChat(messages, tools, tok_, ro));
  // Each remembered assistant message: its rendered body (after its header, through <|im_end|>) is
  // the span between the dialog before it with a generation prompt and the dialog through it; both
  // are prefixes of the full rendering (the template renders a dialog's prefix as a prefix).
  struct Splice {
    size_t begin, end;
    std::vector<int32_t> ids;
  };
  std::vector<Splice> splices;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].role != "assistant") continue;
    std::vector<int32_t> ids;
    {
      std::lock_guard<std::mutex> l(out_mu_);
      auto it = outputs_.find(OutputKey(messages[i]));
      if (it == outputs_.end()) continue;
      ids = it->second;
    }
    std::vector<Message> before(messages.begin(), messages.begin() + static_cast<std::ptrdiff_t>(i));
    std::vector<Message> through(messages.begin(), messages.begin() + static_cast<std::ptrdiff_t>(i + 1));
    text::RenderOptions head_opt, body_opt;
    head_opt.add_generation_prompt = true;
    auto head = text::RenderChat(before, tools, tok_, head_opt);
    auto body = text::RenderChat(through, tools, tok_, body_opt);
    if (!head.ok() || !body.ok()) continue;
    const auto& h = head->tokens;
    const auto& b = body->tokens;
    if (h.size() > b.size() || b.size() > full.tokens.size() || !std::equal(h.begin(), h.end(), b.begin()) ||
        !std::equal(b.begin(), b.end(), full.tokens.begin()))
      continue;  // not prefix-stable here: the template's rendering stands
    splices.push_back({h.size(), b.size(), std::move(ids)});
  }
  if (splices.empty()) return full;
  std::vector<int> out;
  size_t at = 0;
  for (const auto& sp : splices) {
    out.insert(out.end(), full.tokens.begin() + static_cast<std::ptrdiff_t>(at),
               full.tokens.begin() + static_cast<std::ptrdiff_t>(sp.begin));
    out.insert(out.end(), sp.ids.begin(), sp.ids.end());
    at = sp.end;
  }
  out.insert(out.end(), full.tokens.begin() + static_cast<std::ptrdiff_t>(at), full.tokens.end());
  full.tokens = std::move(out);
  full.loss_mask.clear();  // not used for generation
  return full;
}

http::Response OpenAiService::ChatCompletions(const http::Request& req) {
  if (FirstInvalidUtf8(req.body) != std::string_view::npos) {
    const std::string field = FieldWithInvalidUtf8(req.body);
    return Error(400, field + ": invalid UTF-8 (JSON text must be UTF-8)", field == "body" ? "" : field,
                 "invalid_encoding");
  }
  auto body = ParseJson(req.body, "request body");
  if (!body.ok()) {
    const std::string marked = MarkLoneSurrogates(req.body);
    json j = marked.empty() ? json() : json::parse(marked, nullptr, false);
    if (!marked.empty() && !j.is_discarded()) {
      const std::string field = FieldHoldingMark(j);
      return Error(400, field + ": invalid Unicode (an unpaired UTF-16 surrogate escape)", field == "body" ? "" : field,
                   "invalid_encoding");
    }
    return Error(400, "invalid JSON: " + body.status().message());
  }
  auto parsed = ParseBody(*body, opt_, tok_->vocab_size());
  if (!parsed.ok()) return Error(400, parsed.status().message(), ParamOf(parsed.status()));
  Parsed p = std::move(*parsed);
  if (!p.model.empty() && !Serves(p.model))
    return Error(404, "The model '" + p.model + "' does not exist (serving '" + opt_.model_name + "')", "model",
                 "model_not_found");
  if (!p.seeded) {  // a fresh seed per request, so repeated calls sample independently; it is returned
    static thread_local std::mt19937_64 rng{std::random_device{}() ^
                                           (uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()) << 1)};
    p.sampling.seed = rng() >> 11;  // < 2^53: exact as a JavaScript number, so a client can send it back
  }
  const uint64_t seed = p.sampling.seed;
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  const json tools = p.tools_hidden || p.tools.empty() ? json() : p.tools;
  auto rendered = Render(p.messages, tools);
  if (!rendered.ok()) return Error(400, rendered.status().message(), "messages");
  int64_t first_call = 0;
  for (auto& m : rendered->messages) first_call += static_cast<int64_t>(m.tool_calls.size());
  const int64_t ctx_len = static_cast<int64_t>(rendered->tokens.size());
  const auto& mc = gen_->model_config();
  if (ctx_len >= mc.max_position_embeddings)
    return Error(400, "messages: the rendered prompt has " + std::to_string(ctx_len) + " tokens; the model's context is " +
                          std::to_string(mc.max_position_embeddings), "messages", "context_length_exceeded");
  const int32_t im_end = tok_->SpecialId(text::kImEnd);
  const int32_t sec_begin = tok_->SpecialId(text::kSectionBegin);

  GenerateRequest g;
  g.tokens.assign(rendered->tokens.begin(), rendered->tokens.end());
  g.sampling = p.sampling;
  g.sampling.max_new_tokens = std::min<int64_t>(g.sampling.max_new_tokens, mc.max_position_embeddings - ctx_len);
  g.sampling.stop_tokens = {im_end};
  g.n = p.n;
  g.cancel = cancel;
  // Constrained decoding: a forced tool call (required / named) or a JSON response.
  if (!tools.is_null() && (p.tool_choice == "required" || p.tool_choice == "named")) {
    std::vector<std::pair<std::string, std::shared_ptr<const JsonNode>>> choices;
    for (size_t i = 0; i < tools.size(); ++i) {
      const json& f = tools[i]["function"];
      const std::string name = f["name"];
      if (p.tool_choice == "named" && name != p.forced_tool) continue;
      const std::string where = "tools[" + std::to_string(i) + "].function.parameters";
      auto node = CompileJsonSchema(f.contains("parameters") ? f["parameters"] : json{{"type", "object"}}, where);
      if (!node.ok()) return Error(400, node.status().message(), "tools");
      choices.push_back({name, *node});
    }
    g.constraint = ToolCallConstraint(std::move(choices), static_cast<int>(first_call), tok_);
  } else if (!p.response_format.is_null()) {
    json schema;  // json_object: any object
    if (p.response_format["type"] == "json_schema" && p.response_format["json_schema"].contains("schema"))
      schema = p.response_format["json_schema"]["schema"];
    auto node = CompileJsonSchema(schema, "response_format.json_schema.schema");
    if (!node.ok()) return Error(400, node.status().message(), "response_format");
    g.constraint = JsonConstraint(*node, tok_);
  }
  const std::string id = "chatcmpl-" + std::to_string(next_id_++);
  const int64_t created = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch()).count();

  // Turns one finished sample into content / tool calls / finish reason.
  auto finish = [this, tools, first_call, im_end](const Sample& s) {
    Choice c;
    std::vector<int> ids(s.tokens.begin(), s.tokens.end());
    if (!s.matched_stop.empty()) {
      std::string text;
      for (int t : ids)
        if (t != im_end) text += tok_->TokenBytes(t);
      c.content = text.substr(0, text.find(s.matched_stop));
      c.finish = "stop";
      return c;
    }
    text::ParseOptions po;
    po.first_call_index = static_cast<int>(first_call);
    auto a = text::ParseAssistantTokens(*tok_, ids, tools, po);
    if (a.ok()) {
      c.content = a.message.content;
      c.calls = a.message.tool_calls;
      c.finish = s.finish_reason == "length" ? "length" : (c.calls.empty() ? "stop" : "tool_calls");
    } else {
      std::string text;
      for (int t : ids)
        if (t != im_end) text += tok_->TokenBytes(t);
      c.content = text;
      c.finish = s.finish_reason == "length" ? "length" : "stop";
      c.failure = std::string(text::ParseFailureKindName(a.failure->kind)) + ": " + a.failure->message;
    }
    Message sent;
    sent.role = "assistant";
    sent.content = c.content;
    sent.tool_calls = c.calls;
    Remember(sent, s.tokens);
    return c;
  };
  auto calls_json = [](const std::vector<ToolCall>& calls, bool with_index) {
    json arr = json::array();
    for (size_t i = 0; i < calls.size(); ++i) {
      json c = {{"id", calls[i].id}, {"type", "function"},
                {"function", {{"name", calls[i].name}, {"arguments", calls[i].arguments}}}};
      if (with_index) c["index"] = i;
      arr.push_back(c);
    }
    return arr;
  };
  // logprob / top_logprobs are under the processed logits at temperature 1 (OpenAI's meaning);
  // sampling_logprob is under the distribution actually sampled from, policy_logprob under the raw logits.
  auto logprobs_json = [this, im_end](const Sample& s) {
    auto entry = [this](int32_t t, float lp) {
      const std::string& bytes = tok_->TokenBytes(t);
      json b = json::array();
      for (unsigned char ch : bytes) b.push_back(static_cast<int>(ch));
      return json{{"token", bytes}, {"logprob", lp}, {"bytes", b}};
    };
    json content = json::array();
    for (size_t i = 0; i < s.tokens.size(); ++i) {
      json e = entry(s.tokens[i], i < s.api_logprobs.size() ? s.api_logprobs[i] : s.policy_logprobs[i]);
      e["sampling_logprob"] = s.logprobs[i];
      e["policy_logprob"] = s.policy_logprobs[i];
      json top = json::array();
      if (i < s.top_logprobs.size())
        for (auto [t, lp] : s.top_logprobs[i]) top.push_back(entry(t, lp));
      e["top_logprobs"] = top;
      content.push_back(e);
    }
    return json{{"content", content}, {"refusal", nullptr}};
  };

  if (!p.stream) {
    auto fut = gen_->Submit(std::move(g));
    // The client going away cancels the request (its sequences stop at the next step).
    while (fut.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready)
      if (req.client_gone && req.client_gone()) cancel->store(true);
    auto done = fut.get();
    if (!done.ok()) {
      const int st = done.status().code() == Code::kResourceExhausted ? 503 : done.status().code() == Code::kInvalidArgument ? 400 : 500;
      return Error(st, done.status().message());
    }
    json choices = json::array();
    int64_t completion = 0;
    for (size_t i = 0; i < done->samples.size(); ++i) {
      const Sample& s = done->samples[i];
      completion += static_cast<int64_t>(s.tokens.size());
      Choice c = finish(s);
      json msg = {{"role", "assistant"}, {"content", c.calls.empty() || !c.content.empty() ? json(c.content) : json()}};
      if (!c.calls.empty()) msg["tool_calls"] = calls_json(c.calls, false);
      json ch = {{"index", i}, {"message", msg}, {"finish_reason", c.finish},
                 {"logprobs", p.logprobs ? logprobs_json(s) : json()}};
      if (c.failure) ch["k2gym_failure"] = *c.failure;
      choices.push_back(ch);
    }
    json out = {{"id", id}, {"object", "chat.completion"}, {"created", created}, {"model", opt_.model_name},
                {"choices", choices}, {"seed", seed}, {"system_fingerprint", "k2gym"},
                {"usage", {{"prompt_tokens", ctx_len}, {"completion_tokens", completion},
                           {"total_tokens", ctx_len + completion}}}};
    return http::Response::Json(200, Dump(out));
  }

  // Streaming: tokens arrive through on_token (loop thread) into a queue the SSE producer drains.
  struct Stream {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::pair<int64_t, int32_t>> q;
    bool done = false;
  };
  auto stream = std::make_shared<Stream>();
  g.on_token = [stream](int64_t sample, int32_t tok) {
    std::lock_guard<std::mutex> lk(stream->mu);
    stream->q.push_back({sample, tok});
    stream->cv.notify_all();
  };
  size_t hold = 0;
  for (auto& s : g.sampling.stop_strings) hold = std::max(hold, s.size());
  const int64_t n = g.n;
  auto fut = std::make_shared<std::future<Expected<Completion>>>(gen_->Submit(std::move(g)));
  std::string model = opt_.model_name;
  bool include_usage = p.include_usage, want_lp = p.logprobs;
  auto client_gone = req.client_gone;
  return http::Response::Sse([=, this](const http::ChunkWriter& write_raw) {
    // A failed write or a closed connection cancels the generation.
    auto write = [&](std::string_view s) {
      bool ok = write_raw(s);
      if (!ok) cancel->store(true);
      return ok;
    };
    auto chunk = [&](json delta, int64_t index, json finish_reason) {
      json c = {{"id", id}, {"object", "chat.completion.chunk"}, {"created", created}, {"model", model},
                {"seed", seed}, {"system_fingerprint", "k2gym"},
                {"choices", json::array({{{"index", index}, {"delta", delta}, {"logprobs", nullptr},
                                          {"finish_reason", finish_reason}}})}};
      return write("data: " + Dump(c) + "\n\n");
    };
    bool alive = true;
    for (int64_t i = 0; i < n && alive; ++i) alive = chunk({{"role", "assistant"}, {"content", ""}}, i, nullptr);
    std::vector<std::string> text(static_cast<size_t>(n));
    std::vector<size_t> sent(static_cast<size_t>(n), 0);
    std::vector<bool> plain(static_cast<size_t>(n), true);  // no special token seen yet: text is content
    // Drain tokens until the completion is ready and the queue is empty.
    while (true) {
      std::deque<std::pair<int64_t, int32_t>> got;
      {
        std::unique_lock<std::mutex> lk(stream->mu);
        stream->cv.wait_for(lk, std::chrono::milliseconds(20), [&] { return !stream->q.empty(); });
        got.swap(stream->q);
      }
      const bool ready = fut->wait_for(std::chrono::seconds(0)) == std::future_status::ready;
      if (!ready && client_gone && client_gone()) {
        cancel->store(true);
        alive = false;
      }
      for (auto [s, t] : got) {
        if (!plain[s]) continue;
        if (tok_->IsSpecial(t) || t == sec_begin) {
          plain[s] = false;
          continue;
        }
        text[s] += tok_->TokenBytes(t);
        size_t safe = CompleteUtf8(text[s]);
        safe = safe > hold ? std::min(safe, text[s].size() - std::min(text[s].size(), hold)) : 0;
        safe = CompleteUtf8(text[s].substr(0, safe));
        if (safe > sent[s] && alive) {
          alive = chunk({{"content", text[s].substr(sent[s], safe - sent[s])}}, s, nullptr);
          sent[s] = safe;
        }
      }
      if (ready && got.empty()) {
        std::lock_guard<std::mutex> lk(stream->mu);
        if (stream->q.empty()) break;
      }
    }
    auto done = fut->get();
    if (!done.ok()) {
      if (alive) write("data: " + Dump(ErrorBody(done.status().message(), "server_error", "", "internal_error")) + "\n\n");
      return;
    }
    int64_t completion = 0;
    for (int64_t i = 0; i < n && alive; ++i) {
      const Sample& s = done->samples[static_cast<size_t>(i)];
      completion += static_cast<int64_t>(s.tokens.size());
      Choice c = finish(s);
      // Whatever of the final content was not streamed yet (held back for stop strings or cut at a
      // special token), then the tool calls, then the finish reason.
      if (c.content.size() > sent[i] && c.content.compare(0, sent[i], text[i], 0, sent[i]) == 0)
        alive = chunk({{"content", c.content.substr(sent[i])}}, i, nullptr);
      if (alive && !c.calls.empty()) alive = chunk({{"tool_calls", calls_json(c.calls, true)}}, i, nullptr);
      json fin = json::object();
      if (alive) {
        json cj = {{"id", id}, {"object", "chat.completion.chunk"}, {"created", created}, {"model", model},
                   {"seed", seed}, {"system_fingerprint", "k2gym"},
                   {"choices", json::array({{{"index", i}, {"delta", json::object()}, {"finish_reason", c.finish},
                                             {"logprobs", want_lp ? logprobs_json(s) : json()}}})}};
        if (c.failure) cj["choices"][0]["k2gym_failure"] = *c.failure;
        alive = write("data: " + Dump(cj) + "\n\n");
      }
    }
    if (alive && include_usage) {
      json u = {{"id", id}, {"object", "chat.completion.chunk"}, {"created", created}, {"model", model},
                {"choices", json::array()},
                {"usage", {{"prompt_tokens", ctx_len}, {"completion_tokens", completion}, {"total_tokens", ctx_len + completion}}}};
      alive = write("data: " + Dump(u) + "\n\n");
    }
    if (alive) write("data: [DONE]\n\n");
  });
}

}  // namespace k2::gen
