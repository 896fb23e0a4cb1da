// EnginePolicy: dialog -> template tokens (only the new part for a live session) -> Generator ->
// ParseAssistantTokens -> PolicyTurn with both logprob streams; malformed output is a scored failure.
#include "agents/engine_policy.h"

#include <chrono>

namespace k2::agents {

Expected<std::unique_ptr<EnginePolicy>> EnginePolicy::Create(gen::Generator* g, const text::Tokenizer* t,
                                                              EnginePolicyOptions o) {
  if (g == nullptr || t == nullptr) return InvalidArgument("engine policy: generator and tokenizer are required");
  if (t->vocab_size() > g->model_config().vocab_size)
    return InvalidArgument("engine policy: tokenizer vocabulary (" + std::to_string(t->vocab_size()) +
                           ") is larger than the model's vocab_size (" + std::to_string(g->model_config().vocab_size) + ")");
  for (const char* s : {text::kImEnd, text::kImUser, text::kImAssistant, text::kImSystem, text::kImMiddle})
    if (t->SpecialId(s) < 0) return InvalidArgument(std::string("engine policy: tokenizer lacks ") + s);
  auto p = std::unique_ptr<EnginePolicy>(new EnginePolicy(g, t, std::move(o)));
  p->im_end_ = t->SpecialId(text::kImEnd);
  return p;
}

namespace {
int64_t CountCalls(const std::vector<Message>& ms) {
  int64_t n = 0;
  for (auto& m : ms) n += static_cast<int64_t>(m.tool_calls.size());
  return n;
}
}  // namespace

namespace {
// `s` with every invalid UTF-8 sequence replaced by U+FFFD (nlohmann's serializer does the replacing).
std::string Utf8Valid(const std::string& s) {
  return json::parse(json(s).dump(-1, ' ', false, json::error_handler_t::replace)).get<std::string>();
}
}  // namespace

Expected<PolicyTurn> EnginePolicy::Act(const PolicyRequest& req) {
  const auto t0 = std::chrono::steady_clock::now();
  if (req.messages.empty()) return InvalidArgument("engine policy: request has no messages");
  const json tools = req.tools.is_null() ? json::array() : req.tools;
  text::RenderOptions ro;
  ro.add_generation_prompt = true;
  ro.default_system = opt_.default_system;
  const json* tools_arg = tools.empty() ? nullptr : &tools;
  K2_ASSIGN_OR_RETURN(text::RenderedChat full, text::RenderChat(req.messages, tools_arg ? *tools_arg : json(), tok_, ro));
  const std::string tools_key = CanonicalJson(tools);
  // Histories are compared with canonical call ids, as the template renders them.
  K2_ASSIGN_OR_RETURN(std::vector<Message> canon, text::CanonicalizeToolCallIds(req.messages));

  PolicyTurn turn;
  std::vector<int32_t> context;
  bool restart = true;
  SessionState st;
  if (!req.session.empty()) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = sessions_.find(req.session);
    if (it != sessions_.end()) st = it->second;
  }
  if (!req.session.empty() && st.stream_length > 0 && st.tools_canonical == tools_key &&
      canon.size() > st.history.size() && std::equal(st.history.begin(), st.history.end(), canon.begin())) {
    // Continue: render the known history without a generation prompt; its tokens must be a prefix of
    // the full rendering, and what follows it is the new part.
    text::RenderOptions po;
    po.default_system = opt_.default_system;
    auto prefix = text::RenderChat(st.history, tools_arg ? *tools_arg : json(), tok_, po);
    if (prefix.ok() && prefix->tokens.size() <= full.tokens.size() &&
        std::equal(prefix->tokens.begin(), prefix->tokens.end(), full.tokens.begin())) {
      if (st.open_turn) context.push_back(im_end_);  // close a cut-off turn as the template would
      context.insert(context.end(), full.tokens.begin() + static_cast<std::ptrdiff_t>(prefix->tokens.size()),
                     full.tokens.end());
      restart = false;
    }
  }
  if (restart) {
    if (!req.session.empty()) gen_->EndSession(req.session);
    context.assign(full.tokens.begin(), full.tokens.end());
    st = SessionState{};
  }

  gen::GenerateRequest g;
  g.tokens = context;
  g.session = req.session;
  g.sampling.temperature = req.temperature.value_or(opt_.temperature);
  g.sampling.top_p = req.top_p.value_or(opt_.top_p);
  g.sampling.top_k = req.top_k.value_or(opt_.top_k);
  g.sampling.max_new_tokens = req.max_tokens.value_or(opt_.max_tokens);
  g.sampling.seed = req.seed;
  g.sampling.stop_tokens = {im_end_};
  auto done = gen_->Generate(std::move(g));
  if (!done.ok()) {
    // A failed session request leaves the generator session in an unknown state: start over next time.
    if (!req.session.empty()) {
      gen_->EndSession(req.session);
      std::lock_guard<std::mutex> lk(mu_);
      sessions_.erase(req.session);
    }
    return done.status().Context("engine policy");
  }
  gen::Sample& s = done->samples[0];

  text::ParseOptions popt;
  popt.first_call_index = static_cast<int>(CountCalls(canon));
  std::vector<int> ids(s.tokens.begin(), s.tokens.end());
  text::AssistantParse parsed = text::ParseAssistantTokens(*tok_, ids, tools_arg ? *tools_arg : json(), popt);
  turn.message = std::move(parsed.message);
  turn.message.role = "assistant";
  if (parsed.failure) {
    // The parser's message quotes model output, which may be invalid UTF-8: made valid (U+FFFD) here, as
    // every stored or exported trajectory is JSON.
    turn.failure = Utf8Valid(std::string(text::ParseFailureKindName(parsed.failure->kind)) + ": " + parsed.failure->message);
    // Malformed output reaches the episode (and its reward) as `k2gym serve` sends it to an OpenAI
    // client: the text of every generated token but <|im_end|> (special tokens by name, invalid UTF-8
    // replaced by U+FFFD as JSON carries it), no tool calls — so one checkpoint scores the same in
    // process and served. Without this, a reply cut at a stray special token kept only its prefix here.
    std::string text;
    for (int id : ids)
      if (id != im_end_) text += tok_->TokenBytes(id);
    turn.message.content = Utf8Valid(text);
    turn.message.tool_calls.clear();
  }
  turn.message.content = Utf8Valid(turn.message.content);  // a well-formed turn may still cut a character
  turn.truncated = s.finish_reason == "length";
  turn.context_tokens = std::move(context);
  turn.prompt_tokens = done->cached_tokens + done->prompt_tokens;
  turn.completion_tokens = static_cast<int64_t>(s.tokens.size());
  turn.tokens = std::move(s.tokens);
  turn.logprobs = std::move(s.logprobs);
  turn.policy_logprobs = std::move(s.policy_logprobs);

  if (!req.session.empty()) {
    // History as the caller will send it back: the canonical dialog plus the message returned.
    st.history = std::move(canon);
    st.history.push_back(turn.message);
    st.tools_canonical = tools_key;
    st.stream_length = turn.prompt_tokens + turn.completion_tokens;
    st.open_turn = turn.tokens.empty() || turn.tokens.back() != im_end_;
    std::lock_guard<std::mutex> lk(mu_);
    sessions_[req.session] = std::move(st);
  }
  turn.latency_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return turn;
}

void EnginePolicy::EndSession(const std::string& session) {
  gen_->EndSession(session);
  std::lock_guard<std::mutex> lk(mu_);
  sessions_.erase(session);
}

}  // namespace k2::agents
