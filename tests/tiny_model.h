// The tiny MLA + MoE model config the training tests share (2 layers, hidden 32, MoE defaults of
// engine::ModelConfig): small enough for finite-difference checks and CLI runs in a unit test.
#pragma once

#include <cstdint>

#include "engine/engine.h"

namespace k2::test {

inline engine::ModelConfig TinyModelConfig(int64_t vocab_size, int64_t max_positions = 8192) {
  engine::ModelConfig c;
  c.vocab_size = vocab_size;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.moe_intermediate_size = 16;
  c.num_hidden_layers = 2;
  c.max_position_embeddings = max_positions;
  c.initializer_range = 0.05;
  return c;
}

}  // namespace k2::test
