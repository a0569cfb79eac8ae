// The data-parallel group as JS sees it: joining it (the MPI engine, opened only when JS has seen
// a launcher's environment) and the few collectives the Trainer makes itself (step losses and
// token counts, evaluation sums, the options hash, barriers around checkpoints). The optimizer's
// collectives stay in native code (optim/optimizer.cc), on the same Comm.
#include <napi.h>

#include <algorithm>
#include <memory>

#include "../core/error.h"
#include "../dist/mpi_comm.h"
#include "../model/trainable.h"
#include "../optim/gradient_reducer.h"
#include "PromiseWorker.h"
#include "addon_state.h"
#include "errors.h"
#include "options.h"

namespace tk {
namespace {

// The Float64Array argument `index`: its data and length.
std::pair<double*, int64_t> f64_arg(const Napi::CallbackInfo& info, size_t index, const char* what) {
  check_arg(info.Length() > index && info[index].IsTypedArray() && info[index].As<Napi::TypedArray>().TypedArrayType() == napi_float64_array,
            std::string("Expected a Float64Array for ") + what);
  Napi::Float64Array a = info[index].As<Napi::Float64Array>();
  return {a.Data(), static_cast<int64_t>(a.ElementLength())};
}

// Runs a collective on the group off the JS thread; the array stays referenced until it settles.
Napi::Value collective(const Napi::CallbackInfo& info, std::function<void(Comm&)> call, std::vector<Napi::Value> keep = {}) {
  std::shared_ptr<Comm> comm = info.Env().GetInstanceData<AddonState>()->comm;
  return PromiseWorker::start(
      info.Env(), [comm, call] { call(comm ? *comm : single_process_comm()); },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); }, keep);
}

}  // namespace

// openDistributed(engineLibrary) -> {rank, world, engine, version}: initializes MPI through the
// engine library (once per process) and makes it this environment's group.
Napi::Value open_distributed_binding(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    check_arg(info.Length() > 0 && info[0].IsString(), "Expected the MPI engine library's path");
    MpiInfo mi;
    auto comm = open_mpi_comm(info[0].As<Napi::String>().Utf8Value(), &mi);
    info.Env().GetInstanceData<AddonState>()->comm = comm;
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("rank", mi.rank), out.Set("world", mi.world), out.Set("engine", "mpi"), out.Set("version", mi.version);
    return out;
  });
}

// distAllReduce(Float64Array) -> Promise<void>: the element-wise sum over ranks, in place.
Napi::Value dist_all_reduce_binding(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto [data, n] = f64_arg(info, 0, "distAllReduce");
    return collective(info, [data = data, n = n](Comm& c) { c.all_reduce_sum(data, n, CommType::F64); }, {info[0]});
  });
}

// distBroadcast(Float64Array, root) -> Promise<void>: root's values on every rank, in place.
Napi::Value dist_broadcast_binding(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto [data, n] = f64_arg(info, 0, "distBroadcast");
    check_arg(info.Length() > 1 && info[1].IsNumber(), "Expected the broadcast root rank");
    const int root = info[1].As<Napi::Number>().Int32Value();
    return collective(info, [data = data, n = n, root](Comm& c) { c.broadcast(data, n, CommType::F64, root); }, {info[0]});
  });
}

// distBarrier() -> Promise<void>
Napi::Value dist_barrier_binding(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value { return collective(info, [](Comm& c) { c.barrier(); }); });
}

// passGradients() -> Promise<void>: a ZeRO-2 rank with nothing to back-propagate in a micro-batch
// (its share has no labelled token) adds nothing but takes part in the reductions the other ranks'
// backward makes, in the same order. Elsewhere it does nothing.
Napi::Value pass_gradients_binding(const Napi::CallbackInfo& info, const std::shared_ptr<TrainingState>& train) {
  check_arg(train && !train->t.tensors.empty(), "Expected addLora(), enableFullTraining() or addClassifier() before passGradients()");
  auto guard = std::make_shared<TrainingGuard>(*train, "passGradients()");
  std::shared_ptr<Comm> comm = train->reduces_in_backward() ? backend_comm(*train->t.grads.backend(), info.Env().GetInstanceData<AddonState>()->comm) : nullptr;
  return PromiseWorker::start(
      info.Env(),
      [train, guard, comm] {
        if (!comm) return;
        GradientReducer reducer(*comm, train->layout(), train->gradient_groups(), train->t.grads.data(), *train->t.grads.backend());
        reducer.finish();
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); }, {info.This()});
}

// shardTraining({stage}) -> {world, rank, stage, size, padded, momentsOffset, momentsLength}: the
// model trains as its rank of the group openDistributed joined, at ZeRO `stage` (0: every rank
// keeps whole moments; 1 and 2: its shard). Called once the trainable layout is final.
Napi::Value shard_training_binding(const Napi::CallbackInfo& info, const std::shared_ptr<TrainingState>& train) {
  check_arg(train && !train->t.tensors.empty(), "Expected addLora(), enableFullTraining() or addClassifier() before shardTraining()");
  Napi::Object o = options_arg(info, 0);
  const int stage = static_cast<int>(option_int(o, "stage", 1, 0, 2));
  TrainingGuard guard(*train, "shardTraining()");
  const Comm& comm = info.Env().GetInstanceData<AddonState>()->group();
  train->shard(comm.world(), comm.rank(), stage);
  const ShardLayout l = train->layout();
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("world", l.world), out.Set("rank", train->rank), out.Set("stage", stage);
  out.Set("size", static_cast<double>(l.size)), out.Set("padded", static_cast<double>(l.padded()));
  out.Set("momentsOffset", static_cast<double>(train->moments_begin()));
  out.Set("momentsLength", static_cast<double>(std::min(train->m.size(), l.size - train->moments_begin())));
  return out;
}

}  // namespace tk
