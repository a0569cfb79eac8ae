# The one list of CPU sources, read by binding.gyp (as a gyp include) and by CMakeLists.txt
# (which extracts every quoted native/... path). Paths are relative to the project root.
{
  'variables': {
    'tunekit_sources': [
      'native/addon/addon.cc',
      'native/addon/AddonGemm.cc',
      'native/addon/AddonLora.cc',
      'native/addon/AddonTensor.cc',
      'native/addon/AddonWeights.cc',
      'native/addon/PromiseWorker.cc',
      'native/addon/errors.cc',
      'native/core/cpu_features.cc',
      'native/core/bnb_dynamic_map.cc',
      'native/core/fma_peak.cc',
      'native/core/tensor.cc',
      'native/core/thread_pool.cc',
      'native/ops/gemm.cc',
      'native/ops/gguf_quant.cc',
      'native/ops/lora_linear.cc',
      'native/ops/nf4.cc',
      'native/ops/weight_store.cc',
      'native/ops/weights.cc',
      'native/ops/cpu/gemm_avx2.cc',
      'native/ops/cpu/gemm_avx512.cc',
      'native/ops/cpu/gemm_avx512_bf16.cc',
      'native/ops/cpu/gemm_scalar.cc',
    ],
  },
}
