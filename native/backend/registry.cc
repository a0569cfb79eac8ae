#include "registry.h"

#include "../core/error.h"
#include "cpu/cpu_backend.h"
#ifdef TUNEKIT_WITH_CUDA
#include "cuda/cuda_backend.h"
#endif

namespace tk {
namespace {

struct Entry {
  const char* name;
  std::shared_ptr<Backend> (*make)(int device);  // device: the N of "name:N" (0 without one)
};

// The backends compiled into this build.
const Entry kBackends[] = {
    {"cpu", [](int) { return make_cpu_backend(); }},
#ifdef TUNEKIT_WITH_CUDA
    {"cuda", make_cuda_backend},
#endif
};

}  // namespace

std::shared_ptr<Backend> make_backend(const std::string& spec) {
  const size_t colon = spec.find(':');
  const std::string name = spec.substr(0, colon);
  int device = 0;
  if (colon != std::string::npos) {
    const std::string n = spec.substr(colon + 1);
    check_arg(!n.empty() && n.size() <= 4 && n.find_first_not_of("0123456789") == std::string::npos && name != "cpu",
              "Expected a device \"cpu\", \"cuda\" or \"cuda:N\" (N a device index) but received \"" + spec + "\"");
    device = std::stoi(n);
  }
  for (const Entry& e : kBackends)
    if (name == e.name) return e.make(device);
  std::string known;
  for (const std::string& n : backend_names()) known += (known.empty() ? "" : ", ") + n;
  fail(ErrorCode::Unsupported, "Expected a backend this build has (" + known + ") but received \"" + spec + "\"" +
                                   (name == "cuda" ? ": this tunekit was built without CUDA (reinstall with TUNEKIT_CUDA=1 npm install)" : ""));
}

std::vector<std::string> backend_names() {
  std::vector<std::string> names;
  for (const Entry& e : kBackends) names.push_back(e.name);
  return names;
}

}  // namespace tk
