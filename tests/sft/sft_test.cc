// Pins the SFT data path and loop: dialog loading errors, the assistant-only loss mask, packing that
// computes exactly what the documents compute alone, training that lowers the loss, and exact resume.
#include "sft/sft.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "engine/text/chat_template.h"
#include "sft/copy_dialogs.h"
#include "sft/value_variants.h"
#include "tests/tiny_model.h"

namespace k2::sft {
namespace {

text::Tokenizer ByteTokenizer() {
  std::vector<std::string> bytes;
  for (int b = 0; b < 256; ++b) bytes.push_back(std::string(1, static_cast<char>(b)));
  auto t = text::Tokenizer::CreateKimi(bytes);
  K2_CHECK(t.ok()) << t.status().ToString();
  return std::move(t).value();
}

engine::ModelConfig TinyConfig(int64_t vocab) { return test::TinyModelConfig(vocab, 2048); }

std::string Tmp(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("k2gym_sft_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(d);
  return (d / name).string();
}

// A small family of tool-using dialogs: "what is A plus B" -> call add -> result -> answer.
std::vector<Dialog> Dialogs(int n) {
  json tools = json::array({{{"type", "function"},
                             {"function", {{"name", "add"}, {"description", "adds"},
                                           {"parameters", {{"type", "object"}}}}}}});
  std::vector<Dialog> out;
  for (int i = 0; i < n; ++i) {
    int a = i % 7, b = (i * 3) % 5;
    Dialog d;
    d.id = "d" + std::to_string(i);
    d.tools = tools;
    Message u{"user", "add " + std::to_string(a) + " " + std::to_string(b), {}, "", ""};
    Message call{"assistant", "", {{"c0", "add", "{\"a\":" + std::to_string(a) + ",\"b\":" + std::to_string(b) + "}"}},
                 "", ""};
    Message res{"tool", std::to_string(a + b), {}, "c0", "add"};
    Message ans{"assistant", "it is " + std::to_string(a + b), {}, "", ""};
    d.messages = {u, call, res, ans};
    out.push_back(d);
  }
  return out;
}

TEST(LoadDialogs, ReadsTrajectoryAndOpenAiLinesAndFiltersByReward) {
  const std::string p = Tmp("d.jsonl");
  std::ofstream(p) << R"({"id":"t1","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}],"reward":1.0})"
                   << "\n\n"
                   << R"({"messages":[{"role":"user","content":"a"}],"tools":[]})" << "\n"
                   << R"({"id":"t3","messages":[{"role":"user","content":"hi"}],"reward":0.0})" << "\n";
  auto all = LoadDialogs(p);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].id, "t1");
  EXPECT_EQ((*all)[1].id, p + ":3");
  auto good = LoadDialogs(p, 0.5);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(good->size(), 2u);  // the reward-0 line is dropped, the line without a reward is kept
}

TEST(LoadDialogs, ErrorsNameTheLineAndField) {
  const std::string p = Tmp("bad.jsonl");
  std::ofstream(p) << R"({"messages":[]})" << "\n" << R"({"messages":[{"role":5}]})" << "\n";
  auto r = LoadDialogs(p);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(p + ":2"), std::string::npos) << r.status().ToString();
  std::ofstream(p) << R"({"msgs":[]})" << "\n";
  r = LoadDialogs(p);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("missing \"messages\""), std::string::npos) << r.status().ToString();
}

TEST(PackExamples, WeightsAreExactlyTheAssistantTargets) {
  auto tok = ByteTokenizer();
  auto d = Dialogs(1)[0];
  auto e = RenderExample(d, tok);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  PackStats st;
  auto rows = PackExamples({*e}, 1024, true, &st);
  ASSERT_EQ(rows.size(), 1u);
  const int64_t n = static_cast<int64_t>(e->tokens.size()) - 1;
  std::string assistant_text;
  for (int64_t p = 0; p < n; ++p) {
    EXPECT_EQ(rows[0].targets[p], e->tokens[p + 1]);
    EXPECT_EQ(rows[0].weights[p], e->mask[p + 1] ? 1.0f : 0.0f);
    if (rows[0].weights[p] > 0) assistant_text += tok.TokenBytes(rows[0].targets[p]);
  }
  // The weighted targets spell the assistant turns only: never the user's or the tool's text.
  EXPECT_NE(assistant_text.find("it is"), std::string::npos) << assistant_text;
  EXPECT_EQ(assistant_text.find("add 0 0"), std::string::npos) << assistant_text;
  EXPECT_EQ(assistant_text.find("## Return"), std::string::npos) << assistant_text;
  EXPECT_EQ(st.loss_tokens, std::count(e->mask.begin() + 1, e->mask.end(), 1));
  for (int64_t p = n; p < 1024; ++p) EXPECT_EQ(rows[0].weights[p], 0.0f);
}

TEST(PackExamples, ContextWeightGoesToEveryOtherTargetButNeverToPadding) {
  auto tok = ByteTokenizer();
  auto e = RenderExample(Dialogs(1)[0], tok);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  PackStats st0, st;
  auto plain = PackExamples({*e}, 1024, true, &st0);
  auto rows = PackExamples({*e}, 1024, true, &st, 0.25f);
  ASSERT_EQ(rows.size(), 1u);
  const int64_t n = static_cast<int64_t>(e->tokens.size()) - 1;
  int64_t context = 0;
  for (int64_t p = 0; p < n; ++p) {
    EXPECT_EQ(rows[0].weights[p], e->mask[p + 1] ? 1.0f : 0.25f) << p;
    context += e->mask[p + 1] ? 0 : 1;
  }
  EXPECT_GT(context, 0);
  for (int64_t p = n; p < 1024; ++p) EXPECT_EQ(rows[0].weights[p], 0.0f) << p;
  // The loss-token count (and so the held-out loss) still means assistant tokens.
  EXPECT_EQ(st.loss_tokens, st0.loss_tokens);
}

TEST(PackExamples, PackedRowComputesWhatEachDocumentComputesAlone) {
  // The reference: each document alone in its own row (no segments). The packed rows must give every
  // assistant target the same log-prob, so attention never crosses a document and positions restart.
  auto tok = ByteTokenizer();
  std::vector<Example> ex;
  for (const auto& d : Dialogs(3)) ex.push_back(*RenderExample(d, tok));
  const int64_t T = 1024;
  PackStats ps, us;
  auto packed = PackExamples(ex, T, true, &ps);
  auto single = PackExamples(ex, T, false, &us);
  ASSERT_EQ(us.rows, 3);
  ASSERT_LT(ps.rows, us.rows) << "documents should share rows at T=" << T;
  ASSERT_EQ(ps.loss_tokens, us.loss_tokens);
  auto m = engine::Model<float>::Create(TinyConfig(tok.vocab_size()), 3);
  ASSERT_TRUE(m.ok());
  auto lp_of = [&](const std::vector<Row>& rows, bool seg) {
    std::vector<float> lps;  // log-probs of weighted targets, in document order
    for (size_t r = 0; r < rows.size(); ++r) {
      auto b = MakeBatch(rows, {static_cast<int64_t>(r)}, seg);
      auto f = (*m)->Forward(b);
      K2_CHECK(f.ok()) << f.status().ToString();
      const auto& lp = (*m)->token_logprobs();
      for (int64_t p = 0; p < T; ++p)
        if (rows[r].weights[p] > 0) lps.push_back(lp[p]);
    }
    return lps;
  };
  auto a = lp_of(packed, true), b = lp_of(single, false);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 2e-4) << "target " << i;
  // Without the segment ids the packed row would let later documents see earlier ones.
  auto c = lp_of(packed, false);
  double diff = 0;
  for (size_t i = 0; i < c.size(); ++i) diff = std::max(diff, static_cast<double>(std::fabs(c[i] - b[i])));
  EXPECT_GT(diff, 1e-3);
}

TEST(PackExamples, LongDocumentsAreCutAndCounted) {
  Example e{"x", std::vector<int32_t>(50, 1), std::vector<uint8_t>(50, 1)};
  PackStats st;
  auto rows = PackExamples({e, e}, 20, true, &st);
  EXPECT_EQ(st.truncated, 2);
  EXPECT_EQ(rows.size(), 2u);
  EXPECT_EQ(st.loss_tokens, 40);
}

// Without and with a copy warm-up (sft.copy_warmup_dialogs): the stop after 5 steps then falls after
// the warm-up's steps, so the checkpoint carries the run from the warm-up into the epochs.
class TrainSftResume : public testing::TestWithParam<int64_t> {};
INSTANTIATE_TEST_SUITE_P(CopyWarmup, TrainSftResume, testing::Values(0, 12));

TEST_P(TrainSftResume, LowersHeldOutLossAndResumesExactly) {
  auto tok = ByteTokenizer();
  auto dialogs = Dialogs(24);
  SftConfig cfg;
  cfg.copy_warmup_dialogs = GetParam();
  cfg.seq_len = 256;
  cfg.batch_size = 4;
  cfg.epochs = 4;
  cfg.eval_fraction = 0.25;
  cfg.optimizer.lr = 3e-3;
  cfg.optimizer.warmup_steps = 2;
  std::vector<double> evals;
  SftRun run;
  run.seed = 5;
  run.on_eval = [&](int64_t, double l) { evals.push_back(l); };
  auto m = engine::Model<float>::Create(TinyConfig(tok.vocab_size()), 1);
  ASSERT_TRUE(m.ok());
  auto base = EvalLoss(m->get(), PackExamples({*RenderExample(dialogs[3], tok)}, 256, true, nullptr), 1);
  ASSERT_TRUE(base.ok());
  auto r = TrainSft(m->get(), tok, dialogs, cfg, run);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(evals.size(), 4u);
  EXPECT_EQ(r->train.documents, 18 + GetParam());  // 6 of the 24 dialogs are held out
  EXPECT_EQ(r->steps_taken, r->total_steps);
  {  // the warm-up adds its own steps before the 4 epochs
    SftConfig plain = cfg;
    plain.copy_warmup_dialogs = 0;
    SftRun one;
    one.seed = 5;
    one.max_steps = 1;
    auto m0 = engine::Model<float>::Create(TinyConfig(tok.vocab_size()), 1);
    auto p = TrainSft(m0->get(), tok, dialogs, plain, one);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EXPECT_EQ(p->total_steps % 4, 0);
    if (GetParam() > 0) {
      EXPECT_GT(r->total_steps, p->total_steps);
      EXPECT_LT(r->total_steps - p->total_steps, 5);  // so the resumed half starts inside the epochs
    } else {
      EXPECT_EQ(r->total_steps, p->total_steps);
    }
  }
  EXPECT_LT(evals.back(), evals.front() - 0.3) << "held-out loss did not fall";
  EXPECT_LT(evals.back(), 0.8 * *base);
  const auto final_w = (*m)->params()[0].w;

  // The same run stopped after 5 steps (checkpointed) and resumed in a fresh model: same weights,
  // bit for bit (row order, optimizer state and schedule all come back).
  const std::string ck = Tmp("ck");
  std::filesystem::remove_all(ck);
  SftRun r1 = run;
  r1.checkpoint_dir = ck;
  r1.on_eval = nullptr;
  r1.max_steps = 5;
  auto m1 = engine::Model<float>::Create(TinyConfig(tok.vocab_size()), 1);
  // Timed checkpoints (here after every step) change nothing in the training, only how much a kill loses.
  SftConfig timed = cfg;
  timed.checkpoint_every = 0;
  timed.checkpoint_every_s = 1e-9;
  auto a = TrainSft(m1->get(), tok, dialogs, timed, r1);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->steps_taken, 5);
  EXPECT_EQ(a->checkpoints, 5) << "a timed checkpoint after every step, the end's save not repeated";
  auto m2 = engine::Model<float>::Create(TinyConfig(tok.vocab_size()), 99);  // different init: overwritten
  SftRun r2 = r1;
  r2.resume = true;
  r2.max_steps = 0;
  auto b = TrainSft(m2->get(), tok, dialogs, cfg, r2);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(a->steps_taken + b->steps_taken, r->steps_taken);
  for (size_t p = 0; p < (*m)->params().size(); ++p)
    ASSERT_EQ((*m)->params()[p].w, (*m2)->params()[p].w) << (*m)->params()[p].name;
  std::filesystem::remove_all(ck);
}

TEST(CopyDialogs, EveryAnswerIsCopiedFromTheUsersTurnAndTheSetIsSeeded) {
  auto a = MakeCopyDialogs(400, 7), b = MakeCopyDialogs(400, 7), c = MakeCopyDialogs(400, 8);
  ASSERT_EQ(a.size(), 400u);
  int64_t echo = 0, lookup = 0, differ = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].messages, b[i].messages) << i;
    differ += a[i].messages == c[i].messages ? 0 : 1;
    ASSERT_EQ(a[i].messages.size(), 3u);
    EXPECT_EQ(a[i].messages[0].role, "system");
    EXPECT_EQ(a[i].messages[0].content, "");
    const std::string& u = a[i].messages[1].content;
    const std::string& ans = a[i].messages[2].content;
    EXPECT_EQ(a[i].messages[1].role, "user");
    EXPECT_EQ(a[i].messages[2].role, "assistant");
    const std::string rec_tag = "Here is the record: ", q = " What is the ";
    if (u.rfind(rec_tag, 0) == 0) {
      ++lookup;
      // The answer states the asked field of the record, floats with two decimals.
      const size_t qpos = u.find(q);
      ASSERT_NE(qpos, std::string::npos) << u;
      auto rec = ParseJson(u.substr(rec_tag.size(), qpos - rec_tag.size()), "record");
      ASSERT_TRUE(rec.ok()) << u;
      const std::string key = u.substr(qpos + q.size(), u.size() - qpos - q.size() - 1);
      ASSERT_TRUE(rec->contains(key)) << u;
      const json& v = (*rec)[key];
      char want[64];
      if (v.is_number_float()) {
        std::snprintf(want, sizeof want, "%.2f", v.get<double>());
      } else {
        std::snprintf(want, sizeof want, "%lld", static_cast<long long>(v.get<int64_t>()));
      }
      EXPECT_EQ(ans, "The " + key + " is " + want + ".") << u;
    } else {
      ++echo;
      // Every value the assistant says (tokens with a digit or '@') was said by the user.
      std::string tok;
      auto check = [&] {
        while (!tok.empty() && (tok.back() == '.' || tok.back() == ',')) tok.pop_back();
        if (tok.find_first_of("0123456789@") != std::string::npos) {
          EXPECT_NE(u.find(tok), std::string::npos) << "'" << tok << "' not in: " << u;
        }
        tok.clear();
      };
      for (char ch : ans) {
        if (ch == ' ' || ch == '"' || ch == ':' || ch == '{' || ch == '}' || ch == ',') {
          check();
        } else {
          tok += ch;
        }
      }
      check();
    }
  }
  EXPECT_GT(echo, 220);
  EXPECT_GT(lookup, 100);
  EXPECT_GT(differ, 390) << "another seed gives other dialogs";
  // They render with the chat template: the loss falls on the answer only.
  auto tok = ByteTokenizer();
  auto e = RenderExample(a[0], tok);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_GT(std::count(e->mask.begin(), e->mask.end(), 1), static_cast<long>(a[0].messages[2].content.size()) - 1);
  auto text = text::RenderChat(a[0].messages, json::array(), nullptr);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->text.find("You are Kimi"), std::string::npos) << "no default system prompt";
}


// A transfer dialog in the quickstart domains' shape.
Dialog TransferDialog() {
  Dialog d;
  d.id = "t";
  auto call = [](const std::string& name, int i, const std::string& args) {
    return Message{.role = "assistant", .tool_calls = {{"functions." + name + ":" + std::to_string(i), name, args}}};
  };
  auto result = [](const std::string& name, int i, const std::string& out) {
    return Message{.role = "tool", .content = out, .tool_call_id = "functions." + name + ":" + std::to_string(i), .name = name};
  };
  d.messages = {
      {.role = "system", .content = "Today is 2026-10-20.\nRules:\n- Transfers are limited to 500 per transfer.\n- At most 5 orders."},
      {.role = "user", .content = "Hello. I want to send 12.00 of my credit to Bruno. Not 500.00 though."},
      {.role = "assistant", .content = "Could you tell me your id and email?"},
      {.role = "user", .content = "My trader id is TRA-1001 and my email is mateo.jensen0@example.com. The recipient's trader id is TRA-1005."},
      call("fetch_trader", 0, R"({"trader_id":"TRA-1001"})"),
      result("fetch_trader", 0, R"({"balance":1062.65,"count":2,"email":"mateo.jensen0@example.com","geo":{"lat":39.74,"lon":-104.99},"since":"2026-10-21","trader_id":"TRA-1001"})"),
      call("transfer_balance", 1, R"({"amount":12.0,"from_trader_id":"TRA-1001","to_trader_id":"TRA-1005"})"),
      result("transfer_balance", 1, R"({"amount":12.0,"from":{"balance":1050.65,"trader_id":"TRA-1001"},"to":{"balance":3455.8,"trader_id":"TRA-1005"}})"),
      {.role = "assistant", .content = "Done. For your records: 1050.65. Anything else?"},
  };
  return d;
}

TEST(ValueVariant, ReplacesEachValueTheSameWayEverywhereAndKeepsTheRest) {
  const Dialog d = TransferDialog();
  std::set<double> amounts;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    const Dialog v = ValueVariant(d, seed);
    ASSERT_EQ(v.messages.size(), d.messages.size());
    EXPECT_EQ(v.id, "t#v" + std::to_string(seed));
    EXPECT_EQ(v.messages[0], d.messages[0]) << "the system message has no value to replace";
    for (size_t i = 0; i < d.messages.size(); ++i) {
      EXPECT_EQ(v.messages[i].role, d.messages[i].role);
      EXPECT_EQ(v.messages[i].tool_call_id, d.messages[i].tool_call_id);
      ASSERT_EQ(v.messages[i].tool_calls.size(), d.messages[i].tool_calls.size());
      for (size_t c = 0; c < d.messages[i].tool_calls.size(); ++c) {
        EXPECT_EQ(v.messages[i].tool_calls[c].id, d.messages[i].tool_calls[c].id);
        EXPECT_EQ(v.messages[i].tool_calls[c].name, d.messages[i].tool_calls[c].name);
      }
    }
    auto fetch = v.messages[4].tool_calls[0].ParsedArguments();
    auto send = v.messages[6].tool_calls[0].ParsedArguments();
    auto rec = ParseJson(v.messages[5].content, "rec");
    auto out = ParseJson(v.messages[7].content, "out");
    ASSERT_TRUE(fetch && send && rec.ok() && out.ok()) << v.messages[6].tool_calls[0].arguments;
    // Ids: new digits, same prefix and length, the same in the user's turn, the calls and the results.
    const std::string from = (*send)["from_trader_id"], to = (*send)["to_trader_id"];
    EXPECT_NE(from, "TRA-1001");
    EXPECT_NE(to, "TRA-1005");
    EXPECT_NE(from, to);
    EXPECT_EQ(from.size(), 8u);
    EXPECT_EQ(from.substr(0, 4), "TRA-");
    EXPECT_EQ((*fetch)["trader_id"], from);
    EXPECT_EQ((*rec)["trader_id"], from);
    EXPECT_EQ((*out)["from"]["trader_id"], from);
    EXPECT_EQ((*out)["to"]["trader_id"], to);
    EXPECT_EQ(v.messages[3].content, "My trader id is " + from + " and my email is " + (*rec)["email"].get<std::string>() +
                                         ". The recipient's trader id is " + to + ".");
    // Emails: a new local part, the same domain.
    const std::string email = (*rec)["email"];
    EXPECT_NE(email, "mateo.jensen0@example.com");
    EXPECT_EQ(email.substr(email.find('@')), "@example.com");
    // The amount: the user's "%.2f" and the calls' JSON number stay equal; still a whole number under the
    // rule's 500 and above its 5 (not bound by the date's 10 and 20); a number equal to a rule's limit is kept.
    const double amount = (*send)["amount"];
    char said[64];
    std::snprintf(said, sizeof said, "send %.2f of my credit to Bruno. Not 500.00 though.", amount);
    EXPECT_EQ(v.messages[1].content, std::string("Hello. I want to ") + said);
    EXPECT_EQ((*out)["amount"].get<double>(), amount);
    EXPECT_EQ(amount, std::floor(amount));
    EXPECT_GT(amount, 5.0);
    EXPECT_LT(amount, 500.0);
    amounts.insert(amount);
    // The reply states the new balance of the result, with two decimals; a cent value keeps its cents.
    const double bal = (*out)["from"]["balance"];
    EXPECT_NE(bal, 1050.65);
    EXPECT_GT(bal, 500.0);
    EXPECT_LT(bal, 2 * 1050.65);
    EXPECT_NE(std::llround(bal * 100) % 10, 0);
    char reply[96];
    std::snprintf(reply, sizeof reply, "Done. For your records: %.2f. Anything else?", bal);
    EXPECT_EQ(v.messages[8].content, reply);
    // Left alone: integers, negative numbers, dates.
    EXPECT_EQ((*rec)["count"], 2);
    EXPECT_EQ((*rec)["geo"]["lon"], -104.99);
    EXPECT_EQ((*rec)["since"], "2026-10-21");
    EXPECT_NE((*rec)["geo"]["lat"], 39.74);
    // Deterministic in the seed.
    EXPECT_EQ(ValueVariant(d, seed).messages, v.messages);
  }
  EXPECT_GT(amounts.size(), 100u) << "200 seeds give many amounts";
  EXPECT_GT(*amounts.rbegin(), 300.0);
}

TEST(ValueVariant, SftAddsTheVariantsToTrainingOnly) {
  auto tok = ByteTokenizer();
  auto dialogs = Dialogs(8);
  dialogs[0].messages[0].content = "add 2.50 and TRA-1001";  // something to replace
  SftConfig cfg;
  cfg.seq_len = 256;
  cfg.batch_size = 4;
  cfg.epochs = 1;
  cfg.eval_fraction = 0.25;
  cfg.value_variants = 2;
  SftRun run;
  run.seed = 3;
  run.max_steps = 1;
  auto m = engine::Model<float>::Create(TinyConfig(tok.vocab_size()), 1);
  auto r = TrainSft(m->get(), tok, dialogs, cfg, run);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->train.documents, 6 * 3);  // 2 of the 8 dialogs are held out, with no variant
  EXPECT_EQ(r->eval.documents, 2);
}

}  // namespace
}  // namespace k2::sft
