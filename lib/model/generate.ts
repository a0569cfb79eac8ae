// Text generation over a decoding session (KV cache): greedy or sampled (temperature, top-k,
// top-p, repetition penalty, in transformers' order), stop tokens and stop strings, seeded, and
// streamed to the caller as an async iterator of text pieces.
import { z } from 'zod';
import type { GenerateOptions } from '../option-types.js';
import { awaitNative, callNative, TunekitError } from '../errors.js';
import type { NativeTensor } from '../native.js';
import { Tensor } from '../tensor.js';
import type { TextTokenizer } from '../tokenizer/gguf.js';
import { parseOptions, type Same } from '../validate.js';
import { i32Tensor } from './ids.js';
import { rng } from '../random.js';

export const GenerateOptionsSchema = z
  .object({
    maxTokens: z.number().int().min(1).max(1 << 20).optional().describe('Most new tokens to generate (default 128)'),
    temperature: z.number().min(0).optional().describe('0 (default) is greedy decoding; above 0 samples from softmax(logits / temperature)'),
    topK: z.number().int().min(0).optional().describe('Sample among the k most likely tokens (0, the default: off)'),
    topP: z.number().gt(0).max(1).optional().describe('Sample among the smallest set of tokens whose probability reaches p (1, the default: off)'),
    repetitionPenalty: z.number().gt(0).optional().describe('Divide positive (multiply negative) logits of tokens already in the sequence (1, the default: off)'),
    stopTokenIds: z.array(z.number().int().min(0)).optional().describe('Token ids that end generation (default: the end-of-sequence token)'),
    stop: z.array(z.string().min(1)).optional().describe('Strings that end generation; the text stops before them (default: none)'),
    seed: z.number().int().min(0).max(2 ** 32 - 1).optional().describe('Seed of the sampler (default 0)'),
    signal: z.custom<AbortSignal>((v) => v instanceof AbortSignal, 'AbortSignal').meta({ tsType: 'AbortSignal' }).optional().describe('Stops generation when aborted (default: none)'),
  })
  .strict();
export type { GenerateOptions };
// The schema accepts exactly the documented type (a compile-time check).
const schemaMatchesType: Same<z.input<typeof GenerateOptionsSchema>, GenerateOptions> = true;
void schemaMatchesType;

export interface GenerateStep {
  /** The token just generated. */
  tokenId: number;
  /** New text since the previous step (may be empty while a multi-byte character is incomplete; always empty for a model without a tokenizer). */
  text: string;
}

/** Picks the next token from logits (modified in place). */
export function pickToken(logits: Float32Array, seen: Set<number>, o: z.output<typeof GenerateOptionsSchema>, random: () => number): number {
  const penalty = o.repetitionPenalty ?? 1;
  if (penalty !== 1) for (const id of seen) logits[id] = logits[id]! > 0 ? logits[id]! / penalty : logits[id]! * penalty;
  const temperature = o.temperature ?? 0;
  if (temperature === 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
    return best;
  }
  // Candidates sorted by logit, cut by top-k, then softmax, then cut by top-p.
  let order = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]!);
  if (o.topK) order = order.slice(0, o.topK);
  // Subtract the largest logit before dividing: (l − max) / T stays finite or −∞ for any T > 0,
  // where l / T overflowed for tiny T and the NaN softmax picked the least likely token.
  const max = logits[order[0]!]!;
  let probs = order.map((i) => Math.exp((logits[i]! - max) / temperature));
  let total = probs.reduce((a, b) => a + b, 0);
  probs = probs.map((p) => p / total);
  if (o.topP !== undefined && o.topP < 1) {
    let cumulative = 0, keep = 0;
    while (keep < probs.length && cumulative < o.topP) cumulative += probs[keep++]!;
    order = order.slice(0, keep);
    probs = probs.slice(0, keep);
    total = probs.reduce((a, b) => a + b, 0);
    probs = probs.map((p) => p / total);
  }
  let u = random();
  for (let i = 0; i < order.length; i++) {
    u -= probs[i]!;
    if (u <= 0) return order[i]!;
  }
  return order[order.length - 1]!;
}

/** What generation needs from a model: sessions that take new tokens and give the next-token logits. */
export interface Decoder {
  createSession(capacity: number): { decode(tokens: NativeTensor): Promise<NativeTensor> };
}

export async function* generate(
  model: Decoder, tokenizer: TextTokenizer | null, prompt: string | ArrayLike<number>, options: GenerateOptions = {},
): AsyncGenerator<GenerateStep> {
  const o = parseOptions(GenerateOptionsSchema, options, 'generate');
  // Without a tokenizer (a bare weights folder) it generates token ids from token ids, with no text.
  if (!tokenizer && typeof prompt === 'string') throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', 'This model has no tokenizer, so it cannot encode a text prompt; pass token ids');
  if (!tokenizer && o.stop?.length) throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', 'This model has no tokenizer, so it cannot look for stop strings; use stopTokenIds');
  const promptIds = typeof prompt === 'string' ? tokenizer!.encode(prompt) : Array.from(prompt);
  if (promptIds.length === 0) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', 'Expected a non-empty prompt');
  i32Tensor([promptIds.length], promptIds, (i) => `prompt[${i}]`).dispose(); // ids given as numbers: integers only
  const maxTokens = o.maxTokens ?? 128;
  const eos = tokenizer?.eosTokenId ?? null;
  const stopIds = new Set(o.stopTokenIds ?? (eos === null ? [] : [eos]));
  const session = callNative(() => model.createSession(promptIds.length + maxTokens));
  const random = rng(o.seed ?? 0);
  const seen = new Set(promptIds);
  const generated: number[] = [];
  let emitted = '';
  let input = promptIds;
  for (let step = 0; step < maxTokens; step++) {
    if (o.signal?.aborted) return;
    const ids = Tensor.from('i32', [input.length], input);
    const logits = new Tensor(await awaitNative(() => session.decode(ids.handle))) as Tensor<'f32'>;
    ids.dispose();
    const next = pickToken(logits.data, seen, o, random);
    logits.dispose();
    if (stopIds.has(next)) return;
    generated.push(next);
    seen.add(next);
    input = [next];
    if (!tokenizer) {
      yield { tokenId: next, text: '' };
      continue;
    }
    let text = tokenizer.decode(generated, { skipSpecialTokens: true });
    const stopAt = o.stop?.map((s) => text.indexOf(s, Math.max(0, emitted.length - s.length))).filter((i) => i >= 0);
    if (stopAt?.length) {
      text = text.slice(0, Math.min(...stopAt));
      if (text.length > emitted.length) yield { tokenId: next, text: text.slice(emitted.length) };
      return;
    }
    // Hold back a trailing replacement character: the next token may complete the UTF-8 sequence.
    const stable = text.endsWith('\uFFFD') ? text.slice(0, -1) : text;
    const piece = stable.length > emitted.length && stable.startsWith(emitted) ? stable.slice(emitted.length) : '';
    emitted += piece;
    yield { tokenId: next, text: piece };
  }
}
