// Comm over the MPI engine library (dist/mpi/), opened with dlopen by path: the addon never links
// libmpi. Made once per process, when JS has seen a launcher's environment (lib/dist/launcher.ts).
#pragma once
#include <memory>
#include <string>

#include "comm.h"

namespace tk {

struct MpiInfo {
  int rank = 0, world = 1;
  std::string version;  // the MPI library's own version line
};

// Opens `library` (libtunekit_mpi) and initializes MPI; the same Comm on every later call (MPI
// initializes once per process). Throws Unsupported naming the library when it cannot be opened.
std::shared_ptr<Comm> open_mpi_comm(const std::string& library, MpiInfo* info);

}  // namespace tk
