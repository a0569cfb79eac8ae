// How a byte-level GGUF vocabulary splits text before BPE, by its tokenizer.ggml.pre: the sequences
// of split regexes llama.cpp applies for each name it knows (llama-vocab.cpp: the name -> type
// table, then each type's regex_exprs, each regex splitting the pieces the previous one left),
// here as the equivalent @huggingface/tokenizers pre-tokenizer (one isolated Split per regex, then
// the byte-level mapping). Where llama.cpp adapted a model's own regex for its engine (inline
// case-insensitive groups spelled out), the model's original, as its tokenizer.json has it, is
// used: the two split alike.
// Why not transformers' table: its GGUF loader knows a subset (no "smollm", "starcoder",
// "falcon", ...) and falls back to GPT-2's split, which for SmolLM2 encodes "\n\n   1" as
// [39892, 216, 33] where its own tokenizer (digits split first) and llama.cpp give [1004, 33].
// Names that need llama.cpp's hand-written splitters (kimi-k2, afmoe, ...) or an unlisted name
// are refused, naming it: a tokenizer that splits differently trains a different model.
import { TunekitError } from '../errors.js';

const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const LLAMA3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const TEKKEN = '[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+';
const GPT4O = "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const SEED_CODER = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const BAILING = "'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+";
const PORO = ' ?[^(\\s|.,!?…。，、।۔،)]+';

/** Split regexes, applied in order, by llama.cpp's pre-tokenizer type. */
const TYPES: Record<string, string[]> = {
  gpt2: [GPT2],
  starcoder: ['\\p{N}', GPT2], // also SmolLM's: single digits first (its tokenizer.json: Digits, then ByteLevel)
  falcon: ['[\\p{P}\\$\\+<=>\\^~\\|`]+', GPT2, '[0-9][0-9][0-9]'],
  llama3: [LLAMA3],
  qwen2: [QWEN2],
  poro: [PORO],
  viking: [PORO, '\\p{N}'],
  tekken: [TEKKEN],
  gpt4o: [GPT4O],
  seedCoder: [SEED_CODER],
  bailing: [BAILING],
  deepseekCoder: ['[\\r\\n]', '\\s?\\p{L}+', '\\s?\\p{P}+', '[一-龥ࠀ-一가-퟿]+', '\\p{N}'],
  deepseek3: ['\\p{N}{1,3}', '[一-龥぀-ゟ゠-ヿ]+', "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"],
  default: ['[\\p{P}\\$\\+<=>\\^~\\|]+', GPT2, '\\p{N}+', '[0-9][0-9][0-9]'],
};

/** tokenizer.ggml.pre names -> type, as llama.cpp's llama-vocab.cpp reads them. */
const NAMES: Record<string, keyof typeof TYPES> = {
  default: 'default',
  ...Object.fromEntries(['gpt-2', 'phi-2', 'jina-es', 'jina-de', 'gigachat', 'jina-v2-es', 'jina-v2-de', 'a.x-4.0', 'mellum', 'modern-bert',
    'jina-v1-en', 'jina-v2-code', 'roberta-bpe', 'exaone4', 'mpt', 'olmo', 'jais', 'trillion', 'granite-docling'].map((n) => [n, 'gpt2'])),
  ...Object.fromEntries(['starcoder', 'refact', 'command-r', 'smollm', 'codeshell', 'exaone', 'minerva-7b'].map((n) => [n, 'starcoder'])),
  falcon: 'falcon',
  ...Object.fromEntries(['llama3', 'llama-v3', 'llama-bpe', 'falcon3', 'falcon-h1', 'pixtral', 'midm-2.0', 'lfm2', 'dbrx', 'smaug-bpe', 'glm4',
    'chatglm-bpe'].map((n) => [n, 'llama3'])),
  ...Object.fromEntries(['qwen2', 'deepseek-r1-qwen', 'kormo', 'f2llmv2', 'megrez', 'stablelm2', 'hunyuan', 'grok-2'].map((n) => [n, 'qwen2'])),
  ...Object.fromEntries(['poro-chat', 'bloom', 'gpt3-finnish'].map((n) => [n, 'poro'])),
  viking: 'viking',
  tekken: 'tekken',
  ...Object.fromEntries(['gpt-4o', 'llama4', 'kanana2', 'talkie', 'minimax-m2'].map((n) => [n, 'gpt4o'])),
  'seed-coder': 'seedCoder',
  ...Object.fromEntries(['bailingmoe', 'bailingmoe2', 'llada-moe'].map((n) => [n, 'bailing'])),
  'deepseek-coder': 'deepseekCoder',
  ...Object.fromEntries(['deepseek-v3', 'hunyuan-dense'].map((n) => [n, 'deepseek3'])),
};

/** The pre-tokenizer (tokenizer.json form) of a byte-level GGUF vocabulary with this tokenizer.ggml.pre. */
export function byteLevelPreTokenizer(pre: unknown, source: string): Record<string, unknown> {
  // No name: GPT-2's own split, as transformers and llama.cpp's converter of old files assume.
  if (pre === undefined) return { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const type = typeof pre === 'string' ? NAMES[pre] : undefined;
  if (!type) {
    throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${source}: tokenizer.ggml.pre ${JSON.stringify(pre)} is not supported yet; tunekit splits text as llama.cpp does for ${Object.keys(NAMES).sort().join(', ')}`);
  }
  return {
    type: 'Sequence',
    pretokenizers: [
      ...TYPES[type]!.map((regex) => ({ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false })),
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    ],
  };
}
