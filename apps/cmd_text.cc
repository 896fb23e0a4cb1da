// Commands of engine/text: `k2gym tokenizer train|encode|decode` and `k2gym chat-template render|parse`,
// plus the "tokenizer" run-config section (training defaults).
#include <chrono>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "apps/cli.h"
#include "engine/text/bpe_train.h"
#include "engine/text/chat_template.h"
#include "engine/text/tokenizer.h"
#include "sft/sft.h"

namespace k2::app {
namespace {

struct TokenizerTrainConfig {
  int vocab_size = 4096;
  int min_pair_count = 2;
  int threads = 0;
  bool split_digits = false;
  template <class V>
  void Visit(V& v) {
    v("vocab_size", vocab_size,
      "total vocabulary of the trained tokenizer: 256 bytes + merges + 256 Kimi-layout special tokens",
      {.min = 512, .max = 1 << 22});
    v("min_pair_count", min_pair_count, "training stops when the most frequent pair occurs fewer times", {.min = 1});
    v("threads", threads, "pre-tokenization threads (0: all cores)", {.min = 0, .max = 1024});
    v("split_digits", split_digits,
      "one digit per pre-token (Kimi-K2's pattern with \\p{N} for \\p{N}{1,3}): numbers become runs of the ten digit tokens");
  }
};
K2_CONFIG_SECTION("tokenizer", TokenizerTrainConfig,
                  "Defaults of `k2gym tokenizer train` (its flags override them); see docs/tokenizer.md.");

// JSON output that never throws: bytes that are not UTF-8 (decoded token ids, model output) print as U+FFFD.
void PrintJsonSafe(const json& j) { std::cout << j.dump(2, ' ', false, json::error_handler_t::replace) << std::endl; }

// ---- tokenizer --------------------------------------------------------------------------------

struct TrainArgs {
  std::string corpus, out, jsonl_field, tool_declarations = "full";
  bool dialogs = false, split_digits = false;
  std::optional<int> vocab_size, min_pair_count, threads;
} train_args;

// Dialog JSON Lines (as `k2gym sft` reads them) -> the text the model will see: each dialog rendered
// by the chat template with the chosen tool declarations, special-token names replaced by newlines
// (they are never BPE pieces: the template emits their ids).
Expected<std::string> RenderDialogCorpus(const std::string& path, const std::string& tool_decl) {
  K2_ASSIGN_OR_RETURN(std::vector<sft::Dialog> ds, sft::LoadDialogs(path));
  std::string out;
  for (const auto& d : ds) {
    const json tools = tool_decl == "compact" ? text::CompactToolDeclarations(d.tools) : d.tools;
    auto r = text::RenderChat(d.messages, tools, nullptr);
    if (!r.ok()) return r.status().Context(path + ": dialog " + d.id);
    std::string t = r->text;
    for (const auto& [name, id] : text::KimiSpecialTokens(0)) {
      for (size_t at = t.find(name); at != std::string::npos; at = t.find(name, at + 1)) t.replace(at, name.size(), "\n");
    }
    out += t;
    out += '\n';
  }
  return out;
}

Expected<std::string> ReadCorpus(const std::string& path, const std::string& field) {
  K2_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  if (field.empty()) return text;
  // JSON Lines: the string `field` of each line, one document per line.
  std::string out;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    K2_ASSIGN_OR_RETURN(json j, ParseJson(line, path + ":" + std::to_string(n)));
    if (!j.is_object() || !j.contains(field) || !j[field].is_string())
      return InvalidArgument(path + ":" + std::to_string(n) + ": expected an object with string field \"" + field + "\"");
    out += j[field].get<std::string>();
    out += '\n';
  }
  return out;
}

int TokenizerTrain(Context& ctx) {
  auto cfg = config::Get<TokenizerTrainConfig>(ctx.config, "tokenizer");
  if (!cfg.ok()) return Fail(cfg.status());
  text::BpeTrainOptions opt;
  opt.vocab_size = train_args.vocab_size.value_or(cfg->vocab_size);
  opt.min_pair_count = train_args.min_pair_count.value_or(cfg->min_pair_count);
  opt.threads = train_args.threads.value_or(cfg->threads);
  if (train_args.split_digits || cfg->split_digits) opt.pattern = text::kKimiDigitPattern;
  opt.progress = !ctx.g.quiet;
  if (train_args.dialogs && !train_args.jsonl_field.empty())
    return Fail(InvalidArgument("tokenizer train: --dialogs and --jsonl-field exclude each other"));
  auto corpus = train_args.dialogs ? RenderDialogCorpus(train_args.corpus, train_args.tool_declarations)
                                   : ReadCorpus(train_args.corpus, train_args.jsonl_field);
  if (!corpus.ok()) return Fail(corpus.status());
  auto t0 = std::chrono::steady_clock::now();
  auto tok = text::TrainBpe(*corpus, opt);
  if (!tok.ok()) return Fail(tok.status().Context("tokenizer train"));
  if (Status s = tok->set_tool_declarations(train_args.tool_declarations); !s.ok()) return Fail(s);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  Status s = tok->Save(train_args.out);
  if (!s.ok()) return Fail(s);
  json summary = {{"out", train_args.out},
                  {"corpus_bytes", corpus->size()},
                  {"ranks", tok->num_ranks()},
                  {"merges", tok->num_ranks() - 256},
                  {"vocab_size", tok->vocab_size()},
                  {"requested_vocab_size", opt.vocab_size},
                  {"seconds", seconds}};
  if (ctx.g.json) {
    ctx.PrintJson(summary);
  } else {
    std::printf("trained %d ranks (%d merges) + %d special tokens = vocab %d on %zu bytes in %.1fs -> %s\n",
                tok->num_ranks(), tok->num_ranks() - 256, tok->num_reserved(), tok->vocab_size(), corpus->size(),
                seconds, train_args.out.c_str());
    if (tok->vocab_size() < opt.vocab_size)
      std::printf("note: the corpus ran out of pairs seen >= %d times before vocab %d\n", opt.min_pair_count,
                  opt.vocab_size);
  }
  return kExitOk;
}

struct CodecArgs {
  std::string tokenizer, text, file, ids;
  bool text_given = false, special = false;
} codec_args;

int TokenizerEncode(Context& ctx) {
  auto tok = text::Tokenizer::Load(codec_args.tokenizer);
  if (!tok.ok()) return Fail(tok.status());
  std::string input;
  if (!codec_args.file.empty()) {
    auto f = ReadFile(codec_args.file);
    if (!f.ok()) return Fail(f.status());
    input = std::move(*f);
  } else if (codec_args.text_given) {
    input = codec_args.text;
  } else {
    return Fail(InvalidArgument("tokenizer encode: give --text TEXT or --file FILE"));
  }
  std::vector<int> ids = codec_args.special ? tok->EncodeWithSpecial(input) : tok->Encode(input);
  if (ctx.g.json) {
    ctx.PrintJson({{"ids", ids}, {"count", ids.size()}, {"bytes", input.size()}});
  } else {
    for (size_t i = 0; i < ids.size(); ++i) std::printf(i ? " %d" : "%d", ids[i]);
    std::printf("\n");
  }
  return kExitOk;
}

Expected<std::vector<int>> ParseIds(const std::string& text, const std::string& source) {
  std::vector<int> ids;
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == ',' || c == '[' || c == ']') {
      ++i;
      continue;
    }
    size_t j = i;
    if (text[j] == '-') ++j;
    while (j < text.size() && text[j] >= '0' && text[j] <= '9') ++j;
    if (j == i || (j == i + 1 && text[i] == '-') || j - i > 10)
      return InvalidArgument(source + ": byte " + std::to_string(i) + ": expected a token id (integer)");
    ids.push_back(static_cast<int>(std::stoll(text.substr(i, j - i))));
    i = j;
  }
  return ids;
}

int TokenizerDecode(Context& ctx) {
  auto tok = text::Tokenizer::Load(codec_args.tokenizer);
  if (!tok.ok()) return Fail(tok.status());
  std::string src = codec_args.ids, name = "--ids";
  if (!codec_args.file.empty()) {
    auto f = ReadFile(codec_args.file);
    if (!f.ok()) return Fail(f.status());
    src = std::move(*f);
    name = codec_args.file;
  }
  auto ids = ParseIds(src, name);
  if (!ids.ok()) return Fail(ids.status());
  auto bytes = tok->Decode(*ids);
  if (!bytes.ok()) return Fail(bytes.status().Context(name));
  if (ctx.g.json) {
    PrintJsonSafe({{"text", *bytes}, {"bytes", bytes->size()}, {"valid_utf8", text::IsValidUtf8(*bytes)}});
  } else {
    std::fwrite(bytes->data(), 1, bytes->size(), stdout);  // exact bytes, no newline added
  }
  return kExitOk;
}

// ---- chat-template ------------------------------------------------------------------------------

struct TemplateArgs {
  std::string messages, tools, tokenizer, output;
  bool generation_prompt = false, require_end = false;
  std::optional<int> first_call_index;
} tpl_args;

// --messages: an array of messages, or an object {"messages": [...], "tools": [...]} (a chat request).
Status ReadDialog(std::vector<Message>* ms, json* tools) {
  K2_ASSIGN_OR_RETURN(json j, ReadJsonFile(tpl_args.messages));
  const json* arr = &j;
  if (j.is_object()) {
    if (!j.contains("messages")) return InvalidArgument(tpl_args.messages + ": expected an array of messages or {\"messages\": [...]}");
    arr = &j["messages"];
    if (j.contains("tools")) *tools = j["tools"];
  }
  K2_ASSIGN_OR_RETURN(*ms, MessagesFromJson(*arr, tpl_args.messages + ": messages"));
  if (!tpl_args.tools.empty()) {
    K2_ASSIGN_OR_RETURN(*tools, ReadJsonFile(tpl_args.tools));
  }
  return Status::Ok();
}

int TemplateRender(Context& ctx) {
  std::vector<Message> ms;
  json tools;
  Status s = ReadDialog(&ms, &tools);
  if (!s.ok()) return Fail(s);
  std::optional<text::Tokenizer> tok;
  if (!tpl_args.tokenizer.empty()) {
    auto t = text::Tokenizer::Load(tpl_args.tokenizer);
    if (!t.ok()) return Fail(t.status());
    tok = std::move(*t);
  }
  auto r = text::RenderChat(ms, tools, tok ? &*tok : nullptr, {.add_generation_prompt = tpl_args.generation_prompt});
  if (!r.ok()) return Fail(r.status());
  if (ctx.g.json) {
    json out = {{"text", r->text}, {"messages", ToJson(r->messages)}};
    if (tok) {
      out["tokens"] = r->tokens;
      out["loss_mask"] = r->loss_mask;
      int ones = 0;
      for (auto m : r->loss_mask) ones += m;
      out["assistant_tokens"] = ones;
    }
    PrintJsonSafe(out);
  } else {
    std::cout << r->text << std::endl;
    if (tok) {
      for (size_t i = 0; i < r->tokens.size(); ++i) std::printf(i ? " %d" : "%d", r->tokens[i]);
      std::printf("\n");
    }
  }
  return kExitOk;
}

int TemplateParse(Context& ctx) {
  auto out = ReadFile(tpl_args.output);
  if (!out.ok()) return Fail(out.status());
  json tools;
  if (!tpl_args.tools.empty()) {
    auto t = ReadJsonFile(tpl_args.tools);
    if (!t.ok()) return Fail(t.status());
    tools = std::move(*t);
  }
  text::ParseOptions opt{.require_end = tpl_args.require_end, .first_call_index = tpl_args.first_call_index};
  text::AssistantParse p;
  if (!tpl_args.tokenizer.empty()) {
    auto tok = text::Tokenizer::Load(tpl_args.tokenizer);
    if (!tok.ok()) return Fail(tok.status());
    auto ids = ParseIds(*out, tpl_args.output);
    if (!ids.ok()) return Fail(ids.status());
    p = text::ParseAssistantTokens(*tok, *ids, tools, opt);
  } else {
    p = text::ParseAssistantText(*out, tools, opt);
  }
  json j = {{"ok", p.ok()}, {"message", ToJson(p.message)}};
  if (!p.ok())
    j["failure"] = {{"kind", text::ParseFailureKindName(p.failure->kind)},
                    {"message", p.failure->message},
                    {"offset", p.failure->offset}};
  if (ctx.g.json) {
    PrintJsonSafe(j);
  } else if (p.ok()) {
    PrintJsonSafe(j["message"]);
  } else {
    std::fprintf(stderr, "k2gym: parse failure: %s at byte %zu: %s\n", text::ParseFailureKindName(p.failure->kind),
                 p.failure->offset, p.failure->message.c_str());
  }
  return p.ok() ? kExitOk : kExitRuntime;
}

K2_COMMAND("tokenizer", [](CLI::App& app, Context& ctx, Action* action) {
  auto* c = app.add_subcommand("tokenizer", "Byte-level BPE tokenizer: train, encode, decode (docs/tokenizer.md)");
  c->require_subcommand(1);
  auto* train = c->add_subcommand("train", "Train BPE ranks on a corpus; writes DIR/tiktoken.model + DIR/tokenizer.json");
  train->add_option("--corpus", train_args.corpus, "Text file (or JSON Lines with --jsonl-field)")->required()->option_text("FILE")
      ->check(CLI::ExistingFile);
  train->add_option("--out", train_args.out, "Output directory")->required()->option_text("DIR");
  train->add_option("--vocab-size", train_args.vocab_size, "Total vocabulary incl. 256 special tokens (default: tokenizer.vocab_size)");
  train->add_option("--min-pair-count", train_args.min_pair_count, "Stop below this pair frequency (default: tokenizer.min_pair_count)");
  train->add_option("--threads", train_args.threads, "Pre-tokenization threads (default: tokenizer.threads)");
  train->add_option("--jsonl-field", train_args.jsonl_field, "Read the corpus as JSON Lines, this string field per line");
  train->add_flag("--split-digits", train_args.split_digits,
                  "One digit per token: numbers become runs of the ten digit tokens (default: tokenizer.split_digits)");
  train->add_flag("--dialogs", train_args.dialogs,
                  "Read the corpus as dialog JSON Lines (trajectories / OpenAI exports) and train on their rendering");
  train->add_option("--tool-declarations", train_args.tool_declarations,
                    "How the chat template declares tools to models using this tokenizer (stored with it)")
      ->check(CLI::IsMember({"full", "compact"}))
      ->capture_default_str();
  train->callback([action] { *action = TokenizerTrain; });

  auto* enc = c->add_subcommand("encode", "Text -> token ids (special-token text stays ordinary unless --special)");
  enc->add_option("--tokenizer", codec_args.tokenizer, "Tokenizer directory")->required()->option_text("DIR")
      ->check(CLI::ExistingDirectory);
  enc->add_option("--text", codec_args.text, "Text to encode")->each([](const std::string&) { codec_args.text_given = true; });
  enc->add_option("--file", codec_args.file, "Encode this file's bytes")->option_text("FILE")->check(CLI::ExistingFile);
  enc->add_flag("--special", codec_args.special, "Recognize special-token strings such as <|im_end|>");
  enc->callback([action] { *action = TokenizerEncode; });

  auto* dec = c->add_subcommand("decode", "Token ids -> bytes (written raw to stdout)");
  dec->add_option("--tokenizer", codec_args.tokenizer, "Tokenizer directory")->required()->option_text("DIR")
      ->check(CLI::ExistingDirectory);
  dec->add_option("--ids", codec_args.ids, "Ids separated by spaces or commas");
  dec->add_option("--file", codec_args.file, "Read the ids from this file")->option_text("FILE")
      ->check(CLI::ExistingFile);
  dec->callback([action] { *action = TokenizerDecode; });
});

K2_COMMAND("chat-template", [](CLI::App& app, Context& ctx, Action* action) {
  auto* c = app.add_subcommand("chat-template", "Kimi-K2 chat template: render dialogs, parse model output (docs/chat_template.md)");
  c->require_subcommand(1);
  auto* render = c->add_subcommand("render", "Messages (+ tools) -> template text, and token ids + loss mask with --tokenizer");
  render->add_option("--messages", tpl_args.messages, "JSON: array of OpenAI messages or {\"messages\", \"tools\"}")
      ->required()->option_text("FILE.json");
  render->add_option("--tools", tpl_args.tools, "JSON array of OpenAI tool objects")->option_text("FILE.json");
  render->add_option("--tokenizer", tpl_args.tokenizer, "Tokenizer directory (adds tokens and loss mask)")->option_text("DIR")
      ->check(CLI::ExistingDirectory);
  render->add_flag("--add-generation-prompt", tpl_args.generation_prompt, "Append <|im_assistant|>assistant<|im_middle|>");
  render->callback([action] { *action = TemplateRender; });

  auto* parse = c->add_subcommand("parse", "One assistant turn of model output -> message with tool calls, or a failure");
  parse->add_option("--output", tpl_args.output, "Model output: text, or token ids with --tokenizer")->required()->option_text("FILE");
  parse->add_option("--tools", tpl_args.tools, "Declared tools (unknown names fail)")->option_text("FILE.json");
  parse->add_option("--tokenizer", tpl_args.tokenizer, "Read --output as token ids of this tokenizer")->option_text("DIR")
      ->check(CLI::ExistingDirectory);
  parse->add_flag("--require-end", tpl_args.require_end, "Fail when the output has no <|im_end|>");
  parse->add_option("--first-call-index", tpl_args.first_call_index, "Expected IDX of the first call");
  parse->callback([action] { *action = TemplateParse; });
});

}  // namespace
}  // namespace k2::app
