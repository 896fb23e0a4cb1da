// EnginePolicy: the agents::Policy over the in-process Generator — renders the dialog with the Kimi-K2
// chat template (tools declared), keeps one generator session per episode so a turn appends only the
// new messages' tokens, and parses the output into an assistant message (malformed output -> failure).
//
// Token stream of a session: turn k's context_tokens (new messages rendered + the assistant header)
// followed by its generated tokens; the concatenation over turns is exactly what the model saw (the
// KV cache), so RL can score those tokens with their logprobs. When a request's history is not the
// previous history + the returned assistant message (+ new messages), or the tools changed, the session
// restarts: context_tokens is then the whole rendered dialog (and the generator re-prefills it).
// Thread safety: Act/EndSession may run concurrently for different sessions (calls for one session are
// serialized by the caller, as agents/policy.h requires). The generator and tokenizer are not owned.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "agents/policy.h"
#include "engine/gen/generator.h"
#include "engine/text/chat_template.h"
#include "engine/text/tokenizer.h"

namespace k2::agents {

struct EnginePolicyOptions {
  std::string name = "engine";
  double temperature = 1.0;   // defaults for fields a PolicyRequest leaves empty
  double top_p = 1.0;
  int64_t top_k = 0;
  int64_t max_tokens = 512;
  std::string default_system = text::kDefaultSystemPrompt;
};

class EnginePolicy : public Policy {
 public:
  // InvalidArgument when the tokenizer lacks the template's special tokens or its vocabulary is
  // larger than the model's.
  static Expected<std::unique_ptr<EnginePolicy>> Create(gen::Generator* generator, const text::Tokenizer* tokenizer,
                                                        EnginePolicyOptions opt = {});
  std::string name() const override { return opt_.name; }
  Expected<PolicyTurn> Act(const PolicyRequest& request) override;
  void EndSession(const std::string& session) override;

 private:
  EnginePolicy(gen::Generator* g, const text::Tokenizer* t, EnginePolicyOptions o) : gen_(g), tok_(t), opt_(std::move(o)) {}
  struct SessionState {
    std::vector<Message> history;  // the request's messages + the assistant message returned
    std::string tools_canonical;   // CanonicalJson of the tools the session was rendered with
    int64_t stream_length = 0;     // tokens in the generator session
    bool open_turn = false;        // the last generated turn did not end with <|im_end|>
  };
  gen::Generator* gen_;
  const text::Tokenizer* tok_;
  EnginePolicyOptions opt_;
  int32_t im_end_ = -1;
  std::mutex mu_;
  std::map<std::string, SessionState> sessions_;
};

}  // namespace k2::agents
