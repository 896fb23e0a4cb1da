// Generation commands (engine/gen): `k2gym generate` (one prompt, n samples), `k2gym chat` (interactive,
// tools declared from a file) and `k2gym serve` (OpenAI-compatible HTTP on 127.0.0.1 by default).
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <iostream>

#include "agents/engine_policy.h"
#include "apps/cli.h"
#include "engine/gen/generator.h"
#include "engine/gen/openai_server.h"
#include "engine/text/chat_template.h"

namespace k2::app {
namespace {

struct GenArgs {
  std::string ckpt, model, weights, tokenizer;
  std::string prompt, system, tools;
  bool chat_template = false;
  int64_t max_tokens = 128;
  double temperature = 1.0, top_p = 1.0;
  int64_t top_k = 0, n = 1;
  std::vector<std::string> stop;
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string name = "k2gym";
  int workers = 64;
  double keep_alive = 5;
  std::vector<std::string> aliases;
  int64_t max_body = 4 << 20;
  int64_t max_batch = 32, page_size = 16, num_pages = 0;
} args;

// The model from a training checkpoint directory (config.json + model.safetensors, as `pretrain`
// writes them) or from a config (+ optional weights; random init from --seed otherwise).
Expected<std::unique_ptr<engine::Model<float>>> LoadModel(uint64_t seed) {
  std::string cfg_path = args.model, weights = args.weights;
  if (!args.ckpt.empty()) {
    if (!args.model.empty()) return InvalidArgument("give --ckpt DIR or --model CONFIG, not both");
    cfg_path = args.ckpt + "/config.json";
    weights = args.ckpt + "/model.safetensors";
  }
  if (cfg_path.empty()) return InvalidArgument("give --ckpt DIR (a checkpoint) or --model CONFIG.json");
  K2_ASSIGN_OR_RETURN(engine::ModelConfig cfg, engine::LoadModelConfig(cfg_path));
  K2_ASSIGN_OR_RETURN(auto model, engine::Model<float>::Create(cfg, seed));
  if (!weights.empty()) K2_RETURN_IF_ERROR(model->LoadSafetensors(weights));
  return model;
}

gen::GeneratorOptions GenOptions(const text::Tokenizer* tok) {
  gen::GeneratorOptions o;
  o.tokenizer = tok;
  o.page_size = args.page_size;
  o.num_pages = args.num_pages;
  o.max_batch_sequences = args.max_batch;
  o.max_sequences = std::max<int64_t>(64, 2 * args.max_batch);
  o.max_batch_tokens = std::max<int64_t>(512, args.max_batch);
  return o;
}

Expected<std::optional<text::Tokenizer>> LoadTokenizer(bool required) {
  if (args.tokenizer.empty()) {
    if (required) return InvalidArgument("--tokenizer DIR is required (tiktoken.model [+ tokenizer.json])");
    return std::optional<text::Tokenizer>();
  }
  K2_ASSIGN_OR_RETURN(text::Tokenizer t, text::Tokenizer::Load(args.tokenizer));
  return std::optional<text::Tokenizer>(std::move(t));
}

int Generate(Context& ctx) {
  auto model = LoadModel(ctx.g.seed);
  if (!model.ok()) return Fail(model.status());
  auto tok = LoadTokenizer(false);
  if (!tok.ok()) return Fail(tok.status());
  const text::Tokenizer* tp = *tok ? &**tok : nullptr;
  const int64_t V = (*model)->config().vocab_size;
  std::vector<int32_t> prompt;
  if (tp) {
    if (tp->vocab_size() > V)
      return Fail(InvalidArgument("--tokenizer has " + std::to_string(tp->vocab_size()) + " ids; the model only " +
                                  std::to_string(V)));
    if (args.chat_template) {
      std::vector<Message> ms;
      if (!args.system.empty()) ms.push_back({"system", args.system});
      ms.push_back({"user", args.prompt});
      text::RenderOptions ro;
      ro.add_generation_prompt = true;
      auto r = text::RenderChat(ms, json(), tp, ro);
      if (!r.ok()) return Fail(r.status());
      prompt.assign(r->tokens.begin(), r->tokens.end());
    } else {
      auto ids = tp->Encode(args.prompt);
      prompt.assign(ids.begin(), ids.end());
    }
  } else {
    // Byte-level models (`pretrain` on raw bytes): each byte is its token.
    if (args.chat_template) return Fail(InvalidArgument("--chat needs --tokenizer"));
    if (V < 256) return Fail(InvalidArgument("without --tokenizer the model needs vocab_size >= 256 (bytes)"));
    for (unsigned char c : args.prompt) prompt.push_back(c);
  }
  if (!args.stop.empty() && !tp) return Fail(InvalidArgument("--stop needs --tokenizer"));
  auto g = gen::Generator::Create(model->get(), GenOptions(tp));
  if (!g.ok()) return Fail(g.status());
  gen::GenerateRequest rq;
  rq.tokens = prompt;
  rq.n = args.n;
  rq.sampling.temperature = args.temperature;
  rq.sampling.top_p = args.top_p;
  rq.sampling.top_k = args.top_k;
  rq.sampling.max_new_tokens = args.max_tokens;
  rq.sampling.seed = ctx.g.seed;
  rq.sampling.stop_strings = args.stop;
  if (tp && args.chat_template) rq.sampling.stop_tokens = {tp->SpecialId(text::kImEnd)};
  auto c = (*g)->Generate(rq);
  if (!c.ok()) return Fail(c.status());
  auto text_of = [&](const std::vector<int32_t>& ids) {
    std::string s;
    for (int32_t t : ids) s += tp ? tp->TokenBytes(t) : (t < 256 ? std::string(1, static_cast<char>(t)) : "<|" + std::to_string(t) + "|>");
    return s;
  };
  if (ctx.g.json) {
    json samples = json::array();
    for (auto& s : c->samples)
      samples.push_back({{"text", text_of(s.tokens)}, {"tokens", s.tokens}, {"logprobs", s.logprobs},
                         {"policy_logprobs", s.policy_logprobs}, {"finish_reason", s.finish_reason}});
    json out = {{"prompt_tokens", c->prompt_tokens}, {"samples", samples}};
    std::printf("%s\n", out.dump(2, ' ', false, json::error_handler_t::replace).c_str());
    return kExitOk;
  }
  for (size_t i = 0; i < c->samples.size(); ++i) {
    if (c->samples.size() > 1) std::printf("--- sample %zu (%s)\n", i, c->samples[i].finish_reason.c_str());
    std::printf("%s\n", text_of(c->samples[i].tokens).c_str());
  }
  return kExitOk;
}

int Chat(Context& ctx) {
  auto model = LoadModel(ctx.g.seed);
  if (!model.ok()) return Fail(model.status());
  auto tok = LoadTokenizer(true);
  if (!tok.ok()) return Fail(tok.status());
  json tools = json::array();
  if (!args.tools.empty()) {
    auto t = ReadJsonFile(args.tools);
    if (!t.ok()) return Fail(t.status());
    tools = *t;
    auto names = text::DeclaredToolNames(tools);
    if (!names.ok()) return Fail(names.status().Context(args.tools));
  }
  auto g = gen::Generator::Create(model->get(), GenOptions(&**tok));
  if (!g.ok()) return Fail(g.status());
  agents::EnginePolicyOptions po;
  po.temperature = args.temperature;
  po.top_p = args.top_p;
  po.top_k = args.top_k;
  po.max_tokens = args.max_tokens;
  auto policy = agents::EnginePolicy::Create(g->get(), &**tok, po);
  if (!policy.ok()) return Fail(policy.status());
  std::vector<Message> dialog;
  if (!args.system.empty()) dialog.push_back({"system", args.system});
  std::vector<ToolCall> open_calls;  // calls awaiting a /tool answer
  std::string line;
  uint64_t turn = 0;
  std::fprintf(stderr, "k2gym chat: type a message; /tool RESULT answers the next open tool call; /reset; /exit\n");
  while (std::getline(std::cin, line)) {
    if (line == "/exit") break;
    if (line == "/reset") {
      (*policy)->EndSession("chat");
      dialog.clear();
      if (!args.system.empty()) dialog.push_back({"system", args.system});
      open_calls.clear();
      continue;
    }
    if (line.rfind("/tool ", 0) == 0) {
      if (open_calls.empty()) {
        std::fprintf(stderr, "no open tool call\n");
        continue;
      }
      Message m{"tool", line.substr(6)};
      m.tool_call_id = open_calls.front().id;
      m.name = open_calls.front().name;
      open_calls.erase(open_calls.begin());
      dialog.push_back(m);
      if (!open_calls.empty()) continue;  // answer every call before the model speaks again
    } else {
      dialog.push_back({"user", line});
    }
    agents::PolicyRequest rq;
    rq.messages = dialog;
    rq.tools = tools;
    rq.session = "chat";
    rq.seed = ctx.g.seed + turn++;
    auto t = (*policy)->Act(rq);
    if (!t.ok()) return Fail(t.status());
    dialog.push_back(t->message);
    open_calls = t->message.tool_calls;
    if (ctx.g.json) {
      json j = ToJson(t->message);
      if (t->failure) j["failure"] = *t->failure;
      std::printf("%s\n", j.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
    } else {
      std::printf("assistant: %s\n", t->message.content.c_str());
      for (auto& c : t->message.tool_calls) std::printf("tool_call %s %s\n", c.id.c_str(), c.arguments.c_str());
      if (t->failure) std::printf("(malformed output: %s)\n", t->failure->c_str());
    }
    std::fflush(stdout);
  }
  return kExitOk;
}

int Serve(Context& ctx) {
  // Block the stop signals before any thread starts, so every thread inherits the mask and sigwait
  // below is the one place they are received.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  auto model = LoadModel(ctx.g.seed);
  if (!model.ok()) return Fail(model.status());
  auto tok = LoadTokenizer(true);
  if (!tok.ok()) return Fail(tok.status());
  if ((*tok)->vocab_size() > (*model)->config().vocab_size)
    return Fail(InvalidArgument("--tokenizer has more ids than the model's vocab_size"));
  if ((*tok)->SpecialId(text::kImEnd) < 0) return Fail(InvalidArgument("--tokenizer lacks the chat template's tokens"));
  auto g = gen::Generator::Create(model->get(), GenOptions(&**tok));
  if (!g.ok()) return Fail(g.status());
  gen::OpenAiOptions o;
  o.model_name = args.name;
  o.default_max_tokens = args.max_tokens;
  o.max_n = std::min<int64_t>(8, args.max_batch);
  o.http.bind = args.host;
  o.http.port = args.port;
  o.http.max_concurrent = args.workers;
  o.http.max_body_bytes = args.max_body;
  o.http.keep_alive_s = args.keep_alive;
  o.http.max_queue = std::max(64, 4 * args.workers);
  o.aliases = args.aliases;
  gen::OpenAiService svc(g->get(), &**tok, o);
  auto server = svc.Listen();
  if (!server.ok()) return Fail(server.status());
  std::printf("k2gym serve: listening on http://%s (model %s)\n", (*server)->address().c_str(), args.name.c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  (*server)->Stop();
  std::fprintf(stderr, "k2gym serve: stopped (signal %d)\n", sig);
  return kExitOk;
}

void ModelFlags(CLI::App* c) {
  c->add_option("--ckpt", args.ckpt, "checkpoint directory (config.json + model.safetensors, as `pretrain` writes)")
      ->check(CLI::ExistingDirectory);
  c->add_option("--model", args.model, "model config.json (random init from --seed unless --weights)")
      ->check(CLI::ExistingFile);
  c->add_option("--weights", args.weights, "model.safetensors for --model")->check(CLI::ExistingFile);
  c->add_option("--max-batch", args.max_batch, "sequences decoded together")->capture_default_str();
  c->add_option("--page-size", args.page_size, "KV cache page size (tokens)")->capture_default_str();
  c->add_option("--kv-pages", args.num_pages, "KV cache pages (0 = planned from --max-batch and the context)");
}
void SamplingFlags(CLI::App* c) {
  c->add_option("--max-tokens", args.max_tokens, "new tokens per sample")->capture_default_str();
  c->add_option("--temperature", args.temperature, "0 = greedy")->capture_default_str();
  c->add_option("--top-p", args.top_p, "nucleus mass")->capture_default_str();
  c->add_option("--top-k", args.top_k, "0 = off")->capture_default_str();
}

K2_COMMAND("generate", [](CLI::App& app, Context& ctx, Action* action) {
  auto* c = app.add_subcommand("generate", "Sample continuations of a prompt from a model (docs/generation.md)");
  ModelFlags(c);
  SamplingFlags(c);
  c->add_option("--tokenizer", args.tokenizer, "tokenizer directory (without: bytes are tokens)")
      ->check(CLI::ExistingDirectory);
  c->add_option("--prompt", args.prompt, "prompt text")->required();
  c->add_flag("--chat", args.chat_template, "wrap the prompt as a user turn of the chat template");
  c->add_option("--system", args.system, "system message for --chat");
  c->add_option("-n,--n", args.n, "samples (share the prompt's KV pages)")->capture_default_str();
  c->add_option("--stop", args.stop, "stop string (repeatable)");
  c->callback([action] { *action = Generate; });
});

K2_COMMAND("chat", [](CLI::App& app, Context& ctx, Action* action) {
  auto* c = app.add_subcommand("chat", "Interactive chat on stdin with the chat template and optional tools");
  ModelFlags(c);
  SamplingFlags(c);
  c->add_option("--tokenizer", args.tokenizer, "tokenizer directory")->required()->check(CLI::ExistingDirectory);
  c->add_option("--tools", args.tools, "JSON file: OpenAI tools array declared to the model");
  c->add_option("--system", args.system, "system message");
  c->callback([action] { *action = Chat; });
});

K2_COMMAND("serve", [](CLI::App& app, Context& ctx, Action* action) {
  auto* c = app.add_subcommand("serve", "OpenAI-compatible HTTP server: /v1/chat/completions, /v1/models, /health");
  ModelFlags(c);
  c->add_option("--tokenizer", args.tokenizer, "tokenizer directory")->required()->check(CLI::ExistingDirectory);
  c->add_option("--host", args.host, "bind address")->capture_default_str();
  c->add_option("--port", args.port, "port (0 = ephemeral, printed)")->capture_default_str();
  c->add_option("--name", args.name, "model id reported by the API")->capture_default_str();
  c->add_option("--alias", args.aliases, "another model id requests may name (repeatable)");
  c->add_option("--workers", args.workers, "concurrent HTTP requests (the generator batches them)")->capture_default_str();
  c->add_option("--keep-alive", args.keep_alive, "seconds an idle HTTP/1.1 connection stays open (0 = close)")
      ->capture_default_str();
  c->add_option("--max-body", args.max_body, "largest request body (bytes): 413 beyond")->capture_default_str();
  c->add_option("--max-tokens", args.max_tokens, "default max_tokens")->capture_default_str();
  c->callback([action] { *action = Serve; });
});

}  // namespace
}  // namespace k2::app
