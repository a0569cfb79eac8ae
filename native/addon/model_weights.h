// A ModelFamily from its JS config and named weight tensors (model_weights.cc).
#pragma once
#include <napi.h>

#include <memory>
#include <string>

#include "../model/family.h"

namespace tk {

std::shared_ptr<ModelFamily> model_from_js(const std::string& family, const Napi::Object& config, const Napi::Object& tensors);

}  // namespace tk
