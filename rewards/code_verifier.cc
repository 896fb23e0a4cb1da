// Code reward on top of sandbox/: code extraction from markdown fences, io and assert grading, pass
// fraction with per-case reasons.
#include "rewards/code_verifier.h"

#include "core/config.h"
#include "rewards/text_util.h"

namespace k2::rewards {

namespace {

// The start of a reason (its kind) and its end (where a traceback names the error), for explanations.
std::string Abbreviate(const std::string& s) {
  if (s.size() <= 420) return s;
  return s.substr(0, 100) + " ... " + s.substr(s.size() - 300);
}

bool TagFits(const std::string& tag, const std::string& language) {
  std::string t = AsciiLower(tag);
  if (language == "python") return t == "python" || t == "py" || t == "python3";
  if (language == "bash") return t == "bash" || t == "sh" || t == "shell";
  return t == language;
}

}  // namespace

std::string ExtractCode(const std::string& response, const std::string& language) {
  struct Block {
    std::string tag, body;
  };
  std::vector<Block> blocks;
  size_t pos = 0;
  for (;;) {
    size_t open = response.find("```", pos);
    if (open == std::string::npos) break;
    size_t eol = response.find('\n', open);
    if (eol == std::string::npos) break;
    size_t close = response.find("```", eol + 1);
    // An unterminated last fence (a truncated response) still holds code up to the end.
    std::string body = response.substr(eol + 1, close == std::string::npos ? std::string::npos : close - eol - 1);
    blocks.push_back({Trim(response.substr(open + 3, eol - open - 3)), body});
    if (close == std::string::npos) break;
    pos = close + 3;
  }
  if (blocks.empty()) return response;
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it)
    if (it->tag.empty() || TagFits(it->tag, language)) return it->body;
  return blocks.back().body;
}

namespace {

class CodeReward : public Reward {
 public:
  CodeReward(std::shared_ptr<sandbox::Sandbox> sb, CodeConfig cfg) : sb_(std::move(sb)), cfg_(std::move(cfg)) {}
  std::string name() const override { return "code"; }

 protected:
  Expected<RewardResult> DoScore(const ScoreInput& in) const override {
    const json& t = in.task;
    std::string language = cfg_.language;
    if (auto l = t.find("language"); l != t.end()) {
      if (!l->is_string() || (*l != "python" && *l != "bash"))
        return InvalidArgument("code: task.language: expected \"python\" or \"bash\"");
      language = l->get<std::string>();
    }
    sandbox::Limits limits = cfg_.limits;
    if (auto l = t.find("limits"); l != t.end()) {
      // Task limits override the configured ones key by key.
      json merged = config::Writer::ToJson(limits);
      if (!l->is_object()) return InvalidArgument("code: task.limits: expected object");
      for (auto& [k, v] : l->items()) merged[k] = v;
      K2_RETURN_IF_ERROR(config::Reader::Read(merged, limits, "task.limits", "code"));
      K2_RETURN_IF_ERROR(sandbox::ValidateLimits(limits));
    }
    std::vector<sandbox::IoCase> io;
    if (auto c = t.find("io_cases"); c != t.end()) {
      if (!c->is_array()) return InvalidArgument("code: task.io_cases: expected array of {\"input\", \"output\"}");
      for (size_t i = 0; i < c->size(); ++i) {
        const json& e = (*c)[i];
        if (!e.is_object() || !e.contains("input") || !e["input"].is_string() || !e.contains("output") ||
            !e["output"].is_string())
          return InvalidArgument("code: task.io_cases[" + std::to_string(i) + "]: expected {\"input\": string, \"output\": string}");
        io.push_back({e["input"].get<std::string>(), e["output"].get<std::string>()});
      }
    }
    std::string tests;
    if (auto c = t.find("test_code"); c != t.end()) {
      if (!c->is_string()) return InvalidArgument("code: task.test_code: expected string");
      tests = c->get<std::string>();
      if (language != "python") return InvalidArgument("code: task.test_code: assert tests need language python");
    }
    if (io.empty() && tests.empty()) return InvalidArgument("code: task: expected io_cases and/or test_code");

    std::string program = ExtractCode(LastAssistantText(in), language);
    RewardResult r;
    int passed = 0, total = 0;
    std::map<std::string, double> counts;
    auto account = [&](const sandbox::CaseResult& c, const std::string& label) -> Status {
      if (c.status == sandbox::CaseStatus::kSandboxError)
        return Unavailable("code: sandbox failed on " + label + ": " + c.detail);
      ++total;
      passed += c.status == sandbox::CaseStatus::kPassed;
      counts[sandbox::CaseStatusName(c.status)] += 1;
      r.explanation += (r.explanation.empty() ? "" : "\n") + label + ": " + sandbox::CaseStatusName(c.status) +
                       (c.detail.empty() ? "" : " (" + Abbreviate(c.detail) + ")");
      return Status::Ok();
    };
    if (!io.empty()) {
      auto results = sandbox::RunIoCases(*sb_, language, program, io, limits);
      for (size_t i = 0; i < results.size(); ++i) K2_RETURN_IF_ERROR(account(results[i], "io case " + std::to_string(i)));
    }
    if (!tests.empty()) {
      // The tests run in a harness process; the program runs in a child of its own, as module
      // "solution" (its `if __name__ == "__main__":` block stays off), and is only called through a pipe
      // with values coming back as data (sandbox.h, RunAssertTests): its verdict cannot be forged.
      auto c = sandbox::RunAssertTests(*sb_, language, program, tests, limits, "solution");
      K2_RETURN_IF_ERROR(account(c, "assert tests"));
    }
    r.value = static_cast<double>(passed) / total;
    r.components["pass_fraction"] = r.value;
    r.components["passed"] = passed;
    r.components["total"] = total;
    for (auto& [k, v] : counts) r.components[k] = v;
    return r;
  }

 private:
  std::shared_ptr<sandbox::Sandbox> sb_;
  CodeConfig cfg_;
};

}  // namespace

std::unique_ptr<Reward> MakeCodeReward(std::shared_ptr<sandbox::Sandbox> sb, CodeConfig cfg) {
  return std::unique_ptr<Reward>(new CodeReward(std::move(sb), std::move(cfg)));
}

Expected<std::unique_ptr<Reward>> MakeCodeReward(const json& config, const std::string& where) {
  CodeConfig cfg;
  sandbox::SandboxConfig scfg;
  scfg.workers = 2;
  for (auto& [k, v] : config.items()) {
    if (k == "type") continue;
    if (k == "language") {
      if (!v.is_string() || (v != "python" && v != "bash"))
        return InvalidArgument(where + ".language: expected \"python\" or \"bash\"");
      cfg.language = v.get<std::string>();
    } else if (k == "limits") {
      K2_RETURN_IF_ERROR(config::Reader::Read(v, cfg.limits, where + ".limits", "reward config"));
      K2_RETURN_IF_ERROR(sandbox::ValidateLimits(cfg.limits));
    } else if (k == "sandbox") {
      K2_RETURN_IF_ERROR(config::Reader::Read(v, scfg, where + ".sandbox", "reward config"));
    } else {
      return InvalidArgument(where + "." + k + ": unknown key (expected language, limits, sandbox)");
    }
  }
  auto sb = sandbox::Sandbox::Create(scfg);
  if (!sb.ok()) return sb.status().Context(where + ": creating the sandbox");
  return MakeCodeReward(std::shared_ptr<sandbox::Sandbox>(std::move(*sb)), std::move(cfg));
}

}  // namespace k2::rewards
