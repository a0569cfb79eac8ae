// JS class ModelSession: one sequence being generated (its KV cache), made by Model.createSession.
// decode(tokens i32 [n]) -> Promise<Tensor f32 [vocab]> appends the tokens and gives the next-token
// logits; reset(); length; capacity.
#pragma once
#include <napi.h>

#include <atomic>
#include <memory>

#include "../model/family.h"

namespace tk {

// A generation session: one sequence's KV cache; one decode at a time.
struct SessionState {
  std::shared_ptr<const ModelFamily> model;
  std::shared_ptr<TrainingState> train;  // adapters or trained weights applied while decoding, if any
  std::unique_ptr<DecodeCache> cache;
  std::atomic<bool> busy{false};
};

Napi::Function define_model_session(Napi::Env env);

}  // namespace tk
