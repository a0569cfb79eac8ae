// Input that used to pass without a word (issue #14): token ids that are not integers (converted
// to 0/1 by the typed-array copy); addLora during a running step (it replaced the adapters under
// the step, dropping its gradients); eps or a RoPE base <= 0 (NaN logits); a GGUF alignment of
// 2.5; a sampling temperature so small that logits / T overflowed (the least likely token won);
// a disposed tensor written to safetensors (a file tunekit then refused); and PyTorch pickles, refused
// (never unpickled) with the reason and the conversion to safetensors.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel, openGguf, Tensor, TunekitError, writeGguf, writeSafetensors } from '../lib/index.js';
import { pickToken } from '../lib/model/generate.js';
import { tinyModelFolder } from './helpers.js';
import { spawnSync } from 'node:child_process';

const dir = fileURLToPath(new URL('./reference/fixtures/tiny-llama/', import.meta.url));
const gpt2 = fileURLToPath(new URL(join('./reference/fixtures/tiny-gpt2/'), import.meta.url));

describe('token ids, labels and positions', () => {
  it.each([NaN, 1.5, 2 ** 32 + 1, 'a', Infinity])('refuse %s, naming where it is', async (bad) => {
    for (const path of [dir, gpt2]) {
      const m = await loadModel(path);
      m.addLora({ r: 2 });
      await expect(m.logits([1, bad as number])).rejects.toThrow(/Expected tokenIds\[1\] to be an integer/);
      await expect(m.trainStep({ inputIds: [[1, 2], [3, bad as number]], labels: [[1, 2], [3, 4]] })).rejects.toThrow(/Expected inputIds\[1\]\[1\] to be an integer/);
      await expect(m.trainStep({ inputIds: [[1, 2]], labels: [[1, bad as number]] })).rejects.toThrow(/Expected labels\[0\]\[1\] to be an integer/);
      await expect(m.evaluate({ inputIds: [[1, 2]], labels: [[1, 2]], positionIds: [[0, bad as number]] })).rejects.toBeInstanceOf(TunekitError);
    }
  });

  it('are checked against the vocabulary after the conversion', async () => {
    const m = await loadModel(dir);
    await expect(m.logits([1, 1001])).rejects.toThrow(/1001/);
  });
});

describe('training calls while a step runs', () => {
  it('addLora, enableFullTraining and addClassifier are refused, and the step keeps its gradients', async () => {
    const batch = { inputIds: [[5, 7, 9, 11, 13, 15]], labels: [[5, 7, 9, 11, 13, 15]] };
    const clean = await loadModel(dir);
    clean.addLora({ r: 2, seed: 3 });
    await clean.trainStep(batch);
    const want = clean.loraTensors('grads');
    const m = await loadModel(dir);
    m.addLora({ r: 2, seed: 3 });
    const running = m.trainStep(batch);
    expect(() => m.addLora({ r: 4 })).toThrow('Expected no training call running during addLora()');
    expect(() => m.enableFullTraining()).toThrow('Expected no training call running during enableFullTraining()');
    expect(() => m.addClassifier({ classes: 2 })).toThrow('Expected no training call running during addClassifier()');
    await running;
    const got = m.loraTensors('grads');
    for (const [name, g] of Object.entries(want)) expect(Buffer.from(got[name]!.bytes).equals(Buffer.from(g.bytes)), name).toBe(true);
  });
});

describe('model settings that would give NaN logits', () => {
  const work = mkdtempSync(join(tmpdir(), 'tunekit-input-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  const folder = (name: string, change: Record<string, unknown>, from = dir) => {
    const d = join(work, name);
    mkdirSync(d, { recursive: true });
    copyFileSync(join(from, 'model.safetensors'), join(d, 'model.safetensors'));
    writeFileSync(join(d, 'config.json'), JSON.stringify({ ...JSON.parse(readFileSync(join(from, 'config.json'), 'utf8')), ...change }));
    return d;
  };
  it.each([['rms_norm_eps', -1], ['rms_norm_eps', 0], ['rope_theta', 0], ['rope_theta', -5]])('Hugging Face config.json with %s = %s is refused, naming the field', async (key, value) => {
    await expect(loadModel(folder(`llama-${key}-${value}`, { [key]: value }))).rejects.toThrow(new RegExp(`config\\.json: expected a positive number ${key}`));
  });
  it('GPT-2 config.json with layer_norm_epsilon = 0 is refused', async () => {
    await expect(loadModel(folder('gpt2-eps', { layer_norm_epsilon: 0 }, gpt2))).rejects.toThrow(/expected a positive number layer_norm_epsilon/);
  });
  it('a GGUF whose alignment is 2.5 is refused', async () => {
    const file = join(work, 'align.gguf');
    await writeGguf(file, { 'general.alignment': { type: 'f32', value: 2.5 } }, { t: Tensor.from('f32', [2], [1, 2]) });
    await expect(openGguf(file)).rejects.toThrow(/general\.alignment 2\.5 is not a power of two/);
  });
});

describe('sampling temperature', () => {
  it('a tiny temperature samples the most likely token, as the limit T -> 0 does', () => {
    for (let draw = 0; draw < 20; draw++) {
      const r = (draw + 0.5) / 20;
      expect(pickToken(Float32Array.from([1, 5, 3, -2]), new Set(), { temperature: 1e-308 } as never, () => r)).toBe(1);
    }
  });
});

describe('writeSafetensors', () => {
  it('refuses a disposed tensor instead of writing a header without its data', async () => {
    const t = Tensor.from('f32', [3], [1, 2, 3]);
    t.dispose();
    const file = join(mkdtempSync(join(tmpdir(), 'tunekit-st-')), 'w.safetensors');
    await expect(writeSafetensors(file, { w: t })).rejects.toThrow('Expected a live tensor for w but it was disposed');
  });
});

describe('PyTorch pickles', () => {
  const work = mkdtempSync(join(tmpdir(), 'tunekit-pickle-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  const refusal = (file: string, convert: RegExp) =>
    expect.objectContaining({ code: 'ERR_TUNEKIT_UNSUPPORTED', message: expect.stringMatching(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: \\S+ is a PyTorch pickle, which tunekit never loads \\(unpickling runs whatever code the file holds\\)\\. Convert it to safetensors once: .*${convert.source}`)) });

  it('are refused with the reason and the conversion, as a model folder, a file or an adapter', async () => {
    const folder = join(work, 'model');
    mkdirSync(folder, { recursive: true });
    copyFileSync(join(dir, 'config.json'), join(folder, 'config.json'));
    writeFileSync(join(folder, 'pytorch_model.bin'), Buffer.from('PK\x03\x04 not really a pickle'));
    await expect(loadModel(folder)).rejects.toEqual(refusal(join(folder, 'pytorch_model.bin'), /save_pretrained\(.*safe_serialization=True\)/));
    await expect(loadModel(join(folder, 'pytorch_model.bin'))).rejects.toEqual(refusal(join(folder, 'pytorch_model.bin'), /save_pretrained/));
    const adapter = join(work, 'adapter');
    mkdirSync(adapter, { recursive: true });
    writeFileSync(join(adapter, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: ['q_proj'] }));
    writeFileSync(join(adapter, 'adapter_model.bin'), Buffer.from('not really a pickle'));
    const { loadPeftAdapter } = await import('../lib/index.js');
    await expect(loadPeftAdapter(await loadModel(dir), adapter)).rejects.toEqual(refusal(join(adapter, 'adapter_model.bin'), /save_file\(torch\.load\(.*weights_only=True\)/));
  });
});

describe('config sizes', () => {
  const work = mkdtempSync(join(tmpdir(), 'tunekit-config-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  it.each([
    ['tiny-llama', 'num_hidden_layers'],
    ['tiny-gpt2', 'n_layer'],
  ])('a %s config whose %s the tensors do not bear out is refused before anything per layer is built', async (family, key) => {
    const from = fileURLToPath(new URL(`./reference/fixtures/${family}/`, import.meta.url));
    for (const layers of [1e9, 1]) {
      const folder = join(work, `${family}-${layers}`);
      mkdirSync(folder, { recursive: true });
      copyFileSync(join(from, 'model.safetensors'), join(folder, 'model.safetensors'));
      const config = JSON.parse(readFileSync(join(from, 'config.json'), 'utf8'));
      writeFileSync(join(folder, 'config.json'), JSON.stringify({ ...config, [key]: layers }));
      await expect(loadModel(folder)).rejects.toThrow(new RegExp(`config\\.json: ${key} is ${layers} but .* holds the tensors of 2 layers`));
    }
  });

  it('a GGUF whose block_count the tensors do not bear out is refused (one too few loaded a truncated model)', async () => {
    const g = await openGguf(fileURLToPath(new URL('./reference/fixtures/tiny-llama3/tiny-llama3.gguf', import.meta.url)));
    const tensors: Record<string, Tensor<'f32'>> = {};
    for (const n of g.tensors.keys()) tensors[n] = (await g.read(n)) as Tensor<'f32'>;
    const meta: Parameters<typeof writeGguf>[1] = { 'general.architecture': { type: 'string', value: 'llama' } };
    for (const [k, v] of g.metadata) if (typeof v === 'number' && k.startsWith('llama.')) meta[k] = { type: Number.isInteger(v) ? 'u32' : 'f32', value: v };
    await g.close();
    for (const layers of [1, 3, 1e9]) {
      const file = join(work, `blocks-${layers}.gguf`);
      await writeGguf(file, { ...meta, 'llama.block_count': { type: 'u32', value: layers } }, tensors);
      await expect(loadModel(file)).rejects.toThrow(new RegExp(`blocks-${layers}\\.gguf: metadata llama\\.block_count is ${layers} but the file holds the tensors of 2 layers`));
    }
  });
});

describe('third-party failures become TunekitErrors naming the file', () => {
  const work = mkdtempSync(join(tmpdir(), 'tunekit-thirdparty-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  const folder = (name: string, files: Record<string, string>) => {
    const f = join(work, name);
    mkdirSync(f, { recursive: true });
    for (const n of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(dir, n === 'tokenizer.json' || n === 'tokenizer_config.json' ? '../tiny-tokenizer' : '', n), join(f, n));
    for (const [n, text] of Object.entries(files)) writeFileSync(join(f, n), text);
    return f;
  };
  it.each([
    ['config.json', 'null', /config\.json: expected a JSON object but found null/],
    ['tokenizer.json', '{"model": 5}', /tokenizer\.json: not a tokenizer tokenizers\.js can build/],
    ['tokenizer.json', 'null', /tokenizer\.json: expected a JSON object/],
    ['tokenizer_config.json', '[]', /tokenizer_config\.json: expected a JSON object/],
  ])('%s holding %s', async (file, text, message) => {
    const f = folder(`${file}-${text.length}`, { [file]: text });
    const err = await loadModel(f).catch((e) => e);
    expect(err).toBeInstanceOf(TunekitError);
    expect(err.code).toBe('ERR_TUNEKIT_CORRUPT_FILE');
    expect(err.message).toMatch(message);
  });
});

describe('a FIFO where a file is expected', () => {
  const mkfifo = spawnSync('mkfifo', ['--version']).status === 0;
  it.skipIf(!mkfifo)('is refused at once (a GGUF path, a folder\'s config.json and tokenizer.json), not waited on forever', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tunekit-fifo-'));
    try {
      const fifo = join(dir, 'model.gguf');
      spawnSync('mkfifo', [fifo]);
      await expect(loadModel(fifo)).rejects.toThrow(/model\.gguf: expected a regular file but it is a FIFO \(named pipe\)/);
      const folder = tinyModelFolder(join(dir, 'folder'));
      rmSync(join(folder, 'tokenizer.json'));
      spawnSync('mkfifo', [join(folder, 'tokenizer.json')]);
      await expect(loadModel(folder)).rejects.toThrow(/tokenizer\.json: expected a regular file but it is a FIFO/);
      rmSync(join(folder, 'config.json'));
      spawnSync('mkfifo', [join(folder, 'config.json')]);
      await expect(loadModel(folder)).rejects.toThrow(/config\.json: expected a regular file but it is a FIFO/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('under an address-space limit (ulimit -v, as some containers set)', () => {
  const bash = spawnSync('bash', ['-c', 'ulimit -v 2500000 && echo ok'], { encoding: 'utf8' }).stdout.trim() === 'ok';
  it.skipIf(!bash)('tunekit imports, loads and runs a model; a native allocation too large, and a Parquet decompressor that cannot start, are ERR_TUNEKIT_OUT_OF_MEMORY', () => {
    const script = `
      const { Tensor, loadModel, loadDataset, tokenizerFromFolder } = await import(${JSON.stringify(new URL('../dist/lib/index.js', import.meta.url).href)});
      const m = await loadModel(${JSON.stringify(dir)});
      const l = await m.logits([1, 2, 3]);
      let code = 'none', parquet = 'none';
      try { Tensor.zeros('f32', [2 ** 30]); } catch (e) { code = e.code; }
      // A zstd Parquet file needs the WebAssembly decompressor, which cannot start under this limit.
      const tok = await tokenizerFromFolder(${JSON.stringify(fileURLToPath(new URL('./reference/fixtures/tiny-tokenizer/', import.meta.url)))});
      try { await loadDataset(${JSON.stringify(fileURLToPath(new URL('./reference/fixtures/data/chat.parquet', import.meta.url)))}, tok); } catch (e) { parquet = e.code + ': ' + /Parquet decompressors are WebAssembly/.test(e.message); }
      console.log(JSON.stringify({ logits: l.shape, huge: code, parquet }));`;
    // The Parquet decompressors (WebAssembly) alone reserve ~11 GB of address space: they load on first use.
    const r = spawnSync('bash', ['-c', `ulimit -v 2500000 && "${process.execPath}" --input-type=module -e '${script.replace(/'/g, "'\\''")}'`], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toEqual({ logits: [3, 1001], huge: 'ERR_TUNEKIT_OUT_OF_MEMORY', parquet: 'ERR_TUNEKIT_OUT_OF_MEMORY: true' });
  });
});

describe('option messages', () => {
  it('name the path of an unknown key and suggest the tunekit spelling of transformers\' and PEFT\'s names, or the nearest key; enums list their values', async () => {
    const { JobConfig } = await import('../lib/cli/config.js');
    const { parseOptions } = await import('../lib/validate.js');
    const job = (extra: Record<string, unknown>) => () => parseOptions(JobConfig, { model: 'm', data: { path: 'd' }, ...extra }, 'the config');
    expect(job({ training: { learning_rate: 1e-3 } })).toThrow('Unknown option learning_rate in training for the config (did you mean lr?)');
    expect(job({ training: { per_device_train_batch_size: 4 } })).toThrow('Unknown option per_device_train_batch_size in training for the config (did you mean batchSize?)');
    expect(job({ training: { batch_size: 4 } })).toThrow('(did you mean batchSize?)');
    expect(job({ training: { lora_alpha: 16 } })).toThrow('Unknown option lora_alpha in training for the config (did you mean lora.alpha?)');
    expect(job({ lora: { targetz: ['q_proj'] } })).toThrow('Unknown option targetz in lora for the config (did you mean targets?)');
    expect(job({ lora: { targets: ['q', 'v'] } })).toThrow('Expected one of "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "qkv_proj", "gate_up_proj" for lora.targets[0] but received "q"');
    expect(job({ training: { schedule: 'cosin' } })).toThrow('Expected one of "constant", "linear", "cosine", "slanted-triangular" for training.schedule but received "cosin"');
    expect(job({ training: { zzz: 1 } })).toThrow(/Unknown option zzz in training for the config \(known: epochs, maxSteps, batchSize, .*lr,/);
  });

  it('an adapter file where a PEFT folder is expected says what to pass instead of ENOTDIR', async () => {
    const { loadPeftAdapter } = await import('../lib/index.js');
    const m = await loadModel(dir);
    const work = mkdtempSync(join(tmpdir(), 'tunekit-adapter-'));
    writeFileSync(join(work, 'adapter.gguf'), 'GGUF');
    await expect(loadPeftAdapter(m, join(work, 'adapter.gguf'))).rejects.toThrow(/adapter\.gguf is a GGUF LoRA adapter \(for llama\.cpp\); expected a PEFT adapter folder \(adapter_config\.json \+ adapter_model\.safetensors\), such as the adapter\/ folder/);
    rmSync(work, { recursive: true, force: true });
  });
});

describe('a tokenizer.json whose normalizer multiplies the text', () => {
  /** A folder holding the tiny tokenizer, its tokenizer.json rewritten with `patch` by `write`. */
  function tokenizerFolder(prefix: string) {
    const src = fileURLToPath(new URL('./reference/fixtures/tiny-tokenizer/', import.meta.url));
    const work = mkdtempSync(join(tmpdir(), prefix));
    const t = JSON.parse(readFileSync(join(src, 'tokenizer.json'), 'utf8'));
    copyFileSync(join(src, 'tokenizer_config.json'), join(work, 'tokenizer_config.json'));
    return { work, write: (patch: Record<string, unknown>) => writeFileSync(join(work, 'tokenizer.json'), JSON.stringify({ ...t, ...patch })) };
  }

  it('is refused by name before anything is encoded (30 doubling Replace rules: a billion times longer), while Llama-style rules load', async () => {
    const { tokenizerFromFolder } = await import('../lib/index.js');
    const { work, write } = tokenizerFolder('tunekit-norm-');
    const withNormalizer = (normalizers: unknown[]) => write({ normalizer: { type: 'Sequence', normalizers } });
    withNormalizer(Array.from({ length: 30 }, () => ({ type: 'Replace', pattern: { String: ' ' }, content: '  ' })));
    await expect(tokenizerFromFolder(work)).rejects.toThrow(/tokenizer\.json: its normalizer can make a text 1073741824 times longer .* refuses more than 64/);
    withNormalizer([{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }]);
    expect((await tokenizerFromFolder(work))!.encode('a b').length).toBeGreaterThan(0);
    rmSync(work, { recursive: true, force: true });
  });

  // Found by npm run fuzz: a TemplateProcessing listing the sequence 74,113 times took minutes to
  // encode six tokens. Bounded like the normalizers; BERT- and Llama-3-style templates load.
  it('and a post-processor that repeats the text, likewise; real templates load', async () => {
    const { tokenizerFromFolder } = await import('../lib/index.js');
    const { work, write } = tokenizerFolder('tunekit-post-');
    const A = { Sequence: { id: 'A', type_id: 0 } }, B = { Sequence: { id: 'B', type_id: 1 } }, bos = { SpecialToken: { id: '<|im_start|>', type_id: 0 } };
    const special_tokens = { '<|im_start|>': { id: '<|im_start|>', ids: [1], tokens: ['<|im_start|>'] } };
    const withPost = (post_processor: unknown) => write({ post_processor });
    withPost({ type: 'TemplateProcessing', single: Array.from({ length: 74_113 }, () => A), pair: [A, B], special_tokens });
    await expect(tokenizerFromFolder(work)).rejects.toThrow(/tokenizer\.json: its post_processor emits each text 74113 times .* refuses more than 4/);
    withPost({ type: 'Sequence', processors: [{ type: 'ByteLevel' }, { type: 'TemplateProcessing', single: [bos, A], pair: [bos, A, bos, B], special_tokens }] });
    expect((await tokenizerFromFolder(work))!.encode('a b').length).toBeGreaterThan(0);
    rmSync(work, { recursive: true, force: true });
  });
});
