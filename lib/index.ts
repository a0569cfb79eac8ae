// tunekit: fine-tuning of large language models from Node.js. The public API.
export { TunekitError, type TunekitErrorCode } from './errors.js';
export { runtimeInfo, setRuntimeOptions, measureFmaPeak, measureLimit, type RuntimeInfo, type RuntimeOptions, type Isa } from './runtime.js';
export { Tensor, DTYPE_SIZE, numel, type Dtype } from './tensor.js';
export { gemm, linearForward, linearBackwardInput, linearBackwardWeight, type GemmOptions, type MatrixOperand } from './ops/gemm.js';
export { loraLinearForward, loraLinearBackward, loraScale, type LoraAdapter, type LoraOptions, type LoraSaved } from './ops/lora.js';
export { Weights, quantizeWeights, type WeightFormat, type QuantizeOptions, type WeightParts } from './weights.js';
export { openSafetensors, type SafetensorsReader } from './safetensors/read.js';
export { writeSafetensors, writeShardedSafetensors, type WriteOptions, type ShardedWriteOptions, type TensorMap } from './safetensors/write.js';
export { type TensorInfo, type SafetensorsDtype } from './safetensors/format.js';
export { openGguf, type GgufFile } from './gguf/read.js';
export { type GgufTensorInfo, type GgufValue } from './gguf/format.js';
export { tokenizerFromGguf, type TextTokenizer, type ChatMessage } from './tokenizer/gguf.js';
export { loadModel, type Model, type ModelConfig, type LoadOptions, type Batch, type OptimizerState } from './model/load.js';
export { type GenerateOptions, type GenerateStep } from './model/generate.js';
