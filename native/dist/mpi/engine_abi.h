// The C interface between the addon and the MPI engine library (libtunekit_mpi), which is built
// apart and opened with dlopen only when a launcher (mpirun, srun) started this process: the main
// addon and its prebuilds never link libmpi, so they load on machines without MPI, and a plain
// run never calls MPI_Init (which, without a launcher, tries to start a daemon).
// Plain C types only, so the two sides need not share a compiler or a C++ runtime. Every call is
// collective and blocks until done; a nonzero return means failure with a message in `err`.
#pragma once
#include <stddef.h>
#include <stdint.h>

#define TK_MPI_ABI_VERSION 2

enum { TK_MPI_F32 = 0, TK_MPI_F64 = 1 };

typedef struct tk_mpi_engine {
  int abi_version;  // TK_MPI_ABI_VERSION
  // Starts the engine's communication thread, which calls MPI_Init_thread and then every other
  // MPI function: MPI is never entered from two threads (the callers are libuv pool threads).
  int (*init)(int* rank, int* world, char* version, size_t version_len, char* err, size_t err_len);
  int (*all_reduce_sum)(void* data, int64_t count, int type, char* err, size_t err_len);
  // out may be in + rank·count (each rank's block summed in place).
  int (*reduce_scatter_sum)(const void* in, void* out, int64_t count, int type, char* err, size_t err_len);
  // in may be out + rank·count (a sharded vector gathered in place).
  int (*all_gather)(const void* in, void* out, int64_t count, int type, char* err, size_t err_len);
  int (*broadcast)(void* data, int64_t count, int type, int root, char* err, size_t err_len);
  // At root the sum over ranks, in place; elsewhere data is left as it was.
  int (*reduce_sum)(void* data, int64_t count, int type, int root, char* err, size_t err_len);
  int (*barrier)(char* err, size_t err_len);
  // MPI_Finalize on the communication thread, then stops it. Idempotent; also run at exit.
  void (*finalize)(void);
} tk_mpi_engine;

#ifdef __cplusplus
extern "C" {
#endif
// The one symbol the library exports.
const tk_mpi_engine* tk_mpi_engine_v1(void);
#ifdef __cplusplus
}
#endif
