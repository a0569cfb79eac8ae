// Which backend a model runs on: one instance per loaded model, by name. A new backend is one
// folder under backend/ and its line in registry.cc.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "backend.h"

namespace tk {

// Throws Unsupported naming the backends this build has when `name` is not one of them.
std::shared_ptr<Backend> make_backend(const std::string& name);
std::vector<std::string> backend_names();

}  // namespace tk
