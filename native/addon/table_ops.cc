#include "table_ops.h"

#include <cmath>
#include <numeric>

#include "../core/error.h"
#include "../ops/cross_entropy.h"
#include "../ops/weight_store.h"
#include "options.h"
#ifdef TUNEKIT_WITH_CUDA
#include "../backend/cuda/cuda_backend.h"
#endif

namespace tk {
namespace {

constexpr int64_t kBig = int64_t{1} << 40;

GemmOperand dense(const float* p, int64_t ld, bool trans) {
  GemmOperand g;
  g.data = p, g.ld = ld, g.trans = trans;
  return g;
}

}  // namespace

bool table_op(const OpMarshal& m, std::function<void()>& work, std::vector<double>& result) {
  const std::string& name = m.name;
  const Napi::Object& o = m.o;
  const ExecContext x = m.x;
  std::vector<double>* out = &result;
  auto rows_dim = [&](int64_t& rows, int64_t& dim) {
    rows = option_int(o, "rows", 1, 1, kBig), dim = option_int(o, "dim", 1, 1, int64_t{1} << 30);
  };
  if (name == "layernorm_forward" || name == "layernorm_backward") {
    int64_t rows, dim;
    rows_dim(rows, dim);
    const float eps = static_cast<float>(option_number(o, "eps", 1e-5));
    if (name == "layernorm_forward") {
      m.need(4);  // x, w, b, y
      float *in = m.f32(0, rows * dim), *w = m.f32(1, dim), *b = m.f32(2, dim), *y = m.f32(3, rows * dim);
      work = [=] { x.op->layernorm_forward(x, in, w, b, rows, dim, eps, y); };
    } else {
      m.need(6);  // x, w, dy, dx, dw (added to), db (added to)
      float *in = m.f32(0, rows * dim), *w = m.f32(1, dim), *dy = m.f32(2, rows * dim), *dx = m.f32(3, rows * dim),
            *dw = m.f32(4, dim), *db = m.f32(5, dim);
      work = [=] { x.op->layernorm_backward(x, in, w, dy, rows, dim, eps, dx, dw, db); };
    }
  } else if (name == "rmsnorm_backward_full") {  // with dw and a residual added to dx
    int64_t rows, dim;
    rows_dim(rows, dim);
    const float eps = static_cast<float>(option_number(o, "eps", 1e-5));
    m.need(6);  // x, w, dy, dx, dw (added to), residual
    float *in = m.f32(0, rows * dim), *w = m.f32(1, dim), *dy = m.f32(2, rows * dim), *dx = m.f32(3, rows * dim),
          *dw = m.f32(4, dim), *res = m.f32(5, rows * dim);
    work = [=] { x.op->rmsnorm_backward(x, in, w, dy, rows, dim, eps, dx, dw, res); };
  } else if (name == "decode_weights") {
    // tensors: data (the format's storage: f32 / u16 elements, NF4 codes or GGUF blocks as u8),
    // [absmax f32 (NF4)], out f32 [rows * cols]: every row gathered through embedding_forward,
    // which decodes the table's format on the backend.
    WeightView w;
    check_arg(parse_weight_format(option_string(o, "format", "f32"), &w.format), name + ": expected a known weight format");
    w.rows = option_int(o, "rows", 1, 1, int64_t{1} << 31), w.cols = option_int(o, "cols", 1, 1, int64_t{1} << 31);
    w.ld = w.cols, w.blocksize = option_int(o, "blocksize", 64, 1, 4096);
    const bool nf4 = w.format == WeightFormat::NF4;
    m.need(nf4 ? 3 : 2);
    check_arg(static_cast<int64_t>(m.t[0].bytes()) >= weight_data_bytes(w), name + ": expected tensors[0] to hold " +
                                                                                 std::to_string(weight_data_bytes(w)) + " bytes");
    w.data = m.device(0);
    if (nf4) w.absmax = m.f32(1, weight_absmax_count(w));
    float* y = m.f32(nf4 ? 2 : 1, w.rows * w.cols);
    if (option_bool(o, "cudaHost", false)) {  // the GPU's decoder, compiled for the host (CUDA builds)
#ifdef TUNEKIT_WITH_CUDA
      check_arg(std::string(x.backend->name()) == "cpu", name + ": cudaHost decodes host memory (backend cpu)");
      work = [=] { cuda_decode_on_host(w, y); };
      return true;
#else
      fail(ErrorCode::Unsupported, name + ": cudaHost needs a CUDA build");
#endif
    }
    work = [=] {
      std::vector<int32_t> ids(static_cast<size_t>(w.rows));
      std::iota(ids.begin(), ids.end(), 0);
      x.op->embedding_forward(x, w, ids.data(), w.rows, y, false);
    };
  } else if (name == "embedding_forward" || name == "embedding_backward") {
    const int64_t vocab = option_int(o, "vocab", 1, 1, int64_t{1} << 31), dim = option_int(o, "dim", 1, 1, int64_t{1} << 30);
    m.need(3);  // table / dtable (added to), ids, out / dx
    const int64_t n = m.t[1].numel();
    float* table = m.f32(0, vocab * dim);
    int32_t* ids = m.i32(1, n);
    for (int64_t i = 0; i < n; ++i) check_arg(ids[i] >= 0 && ids[i] < vocab, name + ": expected ids in [0, vocab)");
    float* rows = m.f32(2, n * dim);
    const bool accumulate = option_bool(o, "accumulate", false);
    if (name == "embedding_forward") {
      WeightView w;
      w.rows = vocab, w.cols = dim, w.ld = dim, w.data = table;
      work = [=] { x.op->embedding_forward(x, w, ids, n, rows, accumulate); };
    } else {
      work = [=] { x.op->embedding_backward(x, table, ids, rows, n, dim); };
    }
  } else if (name == "bias_forward" || name == "bias_backward") {
    int64_t rows, dim;
    rows_dim(rows, dim);
    m.need(2);  // forward: y (added to), bias; backward: db (added to), dy
    const bool fwd = name == "bias_forward";
    float* a = m.f32(0, fwd ? rows * dim : dim);
    float* b = m.f32(1, fwd ? dim : rows * dim);
    work = [=] { fwd ? x.op->bias_forward(x, a, b, rows, dim) : x.op->bias_backward(x, a, b, rows, dim); };
  } else if (name == "add") {
    m.need(2);
    const int64_t n = m.t[0].numel();
    float *a = m.f32(0, n), *b = m.f32(1, n);
    work = [=] { x.op->add(x, a, b, n); };
  } else if (name == "scale") {
    m.need(1);
    const int64_t n = m.t[0].numel();
    float* a = m.f32(0, n);
    const float s = static_cast<float>(option_number(o, "scale", 1.0));
    work = [=] { x.op->scale(x, a, s, n); };
  } else if (name == "softcap" || name == "softcap_backward") {
    const bool fwd = name == "softcap";
    m.need(fwd ? 1 : 2);  // forward: a (in place); backward: y (capped), dy (in place)
    const int64_t n = m.t[0].numel();
    const float cap = static_cast<float>(option_number(o, "cap", 1.0));
    check_arg(cap > 0 && std::isfinite(cap), "Expected cap > 0");
    float *a = m.f32(0, n), *dy = fwd ? nullptr : m.f32(1, n);
    work = [=] { fwd ? x.op->softcap(x, a, cap, n) : x.op->softcap_backward(x, a, dy, cap, n); };
  } else if (name == "copy_block") {
    int64_t rows, cols = option_int(o, "cols", 1, 1, int64_t{1} << 30);
    rows = option_int(o, "rows", 1, 1, kBig);
    const int64_t ldd = option_int(o, "ldd", cols, cols, int64_t{1} << 30), lds = option_int(o, "lds", cols, cols, int64_t{1} << 30);
    m.need(2);  // dst, src
    float *dst = m.f32(0, (rows - 1) * ldd + cols), *src = m.f32(1, (rows - 1) * lds + cols);
    work = [=] { x.op->copy_block(x, dst, ldd, src, lds, rows, cols); };
  } else if (name == "sum_squares_chunks") {
    m.need(1);
    const int64_t n = m.t[0].numel(), chunk = option_int(o, "chunk", 4096, 1, kBig);
    const float* g = m.f32(0, n);
    work = [=] {
      out->assign(static_cast<size_t>((n + chunk - 1) / chunk), 0.0);
      x.op->sum_squares_chunks(x, g, n, chunk, out->data());
    };
  } else if (name == "gemm") {
    // tensors: a, b, c [, a2, b2]: C = alpha·(op(A)·op(B) [+ A2·B2ᵀ... as stored]) + beta·C, row-major, packed.
    const int64_t M = option_int(o, "m", 1, 1, int64_t{1} << 31), N = option_int(o, "n", 1, 1, int64_t{1} << 31),
                  K = option_int(o, "k", 1, 1, int64_t{1} << 31), K2 = option_int(o, "k2", 0, 0, int64_t{1} << 31);
    const bool ta = option_bool(o, "transposeA", false), tb = option_bool(o, "transposeB", false);
    m.need(K2 ? 5 : 3);
    GemmArgs g;
    g.m = M, g.n = N, g.k = K;
    g.a = dense(m.f32(0, M * K), ta ? M : K, ta);
    g.b = dense(m.f32(1, K * N), tb ? K : N, tb);
    g.c = m.f32(2, M * N), g.ldc = N;
    if (K2) g.k2 = K2, g.a2 = dense(m.f32(3, M * K2), K2, false), g.b2 = dense(m.f32(4, N * K2), K2, true);  // A2 [m, k2], B2 [n, k2]
    g.alpha = static_cast<float>(option_number(o, "alpha", 1.0)), g.beta = static_cast<float>(option_number(o, "beta", 0.0));
    g.bf16 = option_bool(o, "bf16", false);
    work = [=] { x.op->gemm(x, g); };
  } else if (name == "lora_linear_forward" || name == "lora_linear_backward") {
    LoraLinearArgs g;
    g.m = option_int(o, "m", 1, 1, int64_t{1} << 31), g.in = option_int(o, "in", 1, 1, int64_t{1} << 31);
    g.out = option_int(o, "out", 1, 1, int64_t{1} << 31), g.r = option_int(o, "r", 1, 1, 4096);
    g.scale = static_cast<float>(option_number(o, "scale", 1.0)), g.dropout = static_cast<float>(option_number(o, "dropout", 0.0));
    g.seed = static_cast<uint64_t>(option_int(o, "seed", 0, 0, kBig)), g.bf16 = option_bool(o, "bf16", false);
    g.accumulate_grads = option_bool(o, "accumulateGrads", false), g.accumulate_dx = option_bool(o, "accumulateDx", false);
    g.accumulate_y = option_bool(o, "accumulateY", false);
    const bool fwd = name == "lora_linear_forward";
    m.need(fwd ? 6 : 9);  // x, w [out, in], a, b, then forward: y, t; backward: dy, t, dx, da, db
    g.x = m.f32(0, g.m * g.in);
    g.w = dense(m.f32(1, g.out * g.in), g.in, false);
    g.a = m.f32(2, g.r * g.in), g.b = m.f32(3, g.out * g.r);
    if (fwd) {
      float *y = m.f32(4, g.m * g.out), *t = m.f32(5, g.m * g.r);
      work = [=] { x.op->lora_linear_forward(x, g, y, t); };
    } else {
      float *dy = m.f32(4, g.m * g.out), *t = m.f32(5, g.m * g.r), *dx = m.f32(6, g.m * g.in), *da = m.f32(7, g.r * g.in),
            *db = m.f32(8, g.out * g.r);
      work = [=] { x.op->lora_linear_backward(x, g, dy, t, dx, da, db); };
    }
  } else if (name == "nccl_check") {  // CUDA builds: NCCL on one GPU (nccl_self_check), [wrong values]
    const int device = static_cast<int>(option_int(o, "device", 0, 0, 1023));
#ifdef TUNEKIT_WITH_NCCL
    work = [=] { *out = {static_cast<double>(nccl_self_check(device))}; };
#else
    (void)device;
    fail(ErrorCode::Unsupported, "nccl_check needs a CUDA build with NCCL's header");
#endif
  } else {
    return false;
  }
  return true;
}

}  // namespace tk
