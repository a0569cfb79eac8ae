#include "registry.h"

#include "../core/error.h"
#include "cpu/cpu_backend.h"

namespace tk {
namespace {

struct Entry {
  const char* name;
  std::shared_ptr<Backend> (*make)();
};

// The backends compiled into this build (a CUDA build adds its line here).
const Entry kBackends[] = {
    {"cpu", make_cpu_backend},
};

}  // namespace

std::shared_ptr<Backend> make_backend(const std::string& name) {
  for (const Entry& e : kBackends)
    if (name == e.name) return e.make();
  std::string known;
  for (const std::string& n : backend_names()) known += (known.empty() ? "" : ", ") + n;
  fail(ErrorCode::Unsupported, "Expected a backend this build has (" + known + ") but received \"" + name + "\"");
}

std::vector<std::string> backend_names() {
  std::vector<std::string> names;
  for (const Entry& e : kBackends) names.push_back(e.name);
  return names;
}

}  // namespace tk
