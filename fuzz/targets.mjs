// What is fuzzed: each target makes a case (files in a folder, from a committed seed file and a
// seeded mutator) and runs it through the public API as a user would (open, load, read every
// tensor, tokenize, render the chat template, run the model, load a dataset).
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mutateBytes, mutateJson, mutateLines, mutateTemplate } from './mutate.mjs';

const fixtures = fileURLToPath(new URL('../test/reference/fixtures/', import.meta.url));
const seed = (p) => readFileSync(join(fixtures, p));

/** A safetensors file mutated in its bytes or in its header's JSON (then re-framed, length often right). */
function mutateSafetensors(r, bytes) {
  const headerLength = Number(bytes.readBigUInt64LE(0));
  if (r.below(5) === 0) { // the tensor data only: any bytes there are valid values
    const out = Buffer.from(bytes);
    if (out.length > 8 + headerLength) out[8 + headerLength + r.below(out.length - 8 - headerLength)] ^= 1 + r.below(255);
    return out;
  }
  if (r.below(2) === 0) return mutateBytes(r, bytes, 8 + headerLength);
  const header = mutateJson(r, bytes.subarray(8, 8 + headerLength).toString('utf8'));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length + (r.below(5) === 0 ? r.below(3) - 1 : 0)));
  return Buffer.concat([length, header, bytes.subarray(8 + headerLength)]);
}

const tinyLlama = ['config.json', 'model.safetensors'].map((f) => [f, `tiny-llama/${f}`]);
const tinyTokenizer = ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja'].map((f) => [f, `tiny-tokenizer/${f}`]);
const DATA_TEXT = {
  jsonl: Array.from({ length: 24 }, (_, i) => JSON.stringify(i % 2 ? { prompt: `question ${i}`, completion: ` answer ${i}` } : { messages: [{ role: 'user', content: `hi ${i}` }, { role: 'assistant', content: `hello ${i}` }] })).join('\n'),
  csv: 'text,label\n' + Array.from({ length: 24 }, (_, i) => `"the cat ${i}, sat",${i % 3}`).join('\n'),
};

/** Writes the seed files of a folder target, then the mutated one. */
function folder(dir, files, mutated) {
  mkdirSync(dir, { recursive: true });
  for (const [name, from] of files) if (name !== mutated[0]) cpSync(join(fixtures, from), join(dir, name));
  writeFileSync(join(dir, mutated[0]), mutated[1]);
}

async function loadAndRun(api, path) {
  const m = await api.loadModel(path);
  if (m.tokenizer) {
    const ids = m.tokenizer.encode('hello world, the cat');
    m.tokenizer.applyChatTemplate([{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }], { addGenerationPrompt: false });
    if (ids.length) await m.logits(ids.slice(0, 8));
  } else {
    await m.logits([1, 2, 3]);
  }
}

export const TARGETS = {
  safetensors: {
    make(r, dir) {
      const from = r.below(2) ? 'safetensors/single.safetensors' : 'safetensors/bf16.safetensors';
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'model.safetensors'), mutateSafetensors(r, seed(from)));
      return 'model.safetensors';
    },
    async run(api, dir) {
      const reader = await api.openSafetensors(join(dir, 'model.safetensors'));
      try {
        for (const name of reader.names()) await reader.read(name);
      } finally {
        await reader.close();
      }
    },
  },
  'safetensors-sharded': {
    make(r, dir) {
      const files = ['model.safetensors.index.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'].map((f) => [f, `safetensors/sharded/${f}`]);
      const [name, from] = files[r.below(3)];
      folder(dir, files, [name, name.endsWith('.json') ? mutateJson(r, seed(from).toString('utf8')) : mutateSafetensors(r, seed(from))]);
    },
    async run(api, dir) {
      const reader = await api.openSafetensors(dir);
      try {
        for (const name of reader.names()) await reader.read(name);
      } finally {
        await reader.close();
      }
    },
  },
  gguf: {
    make(r, dir) {
      mkdirSync(dir, { recursive: true });
      const model = r.below(2) === 0;
      const bytes = seed(model ? 'tiny-kquant/tiny-kquant.gguf' : 'gguf/tiny.gguf');
      writeFileSync(join(dir, 'model.gguf'), mutateBytes(r, bytes, model ? 24_000 : bytes.length));
    },
    async run(api, dir) {
      const file = join(dir, 'model.gguf');
      const g = await api.openGguf(file);
      const arch = g.metadata.get('general.architecture');
      try {
        for (const name of g.tensors.keys()) await g.read(name);
      } finally {
        await g.close();
      }
      if (arch !== undefined) await loadAndRun(api, file);
    },
  },
  'hf-config': {
    make(r, dir) {
      folder(dir, [...tinyLlama, ...tinyTokenizer], ['config.json', mutateJson(r, seed('tiny-llama/config.json').toString('utf8'))]);
    },
    run: (api, dir) => loadAndRun(api, dir),
  },
  'hf-tokenizer': {
    make(r, dir) {
      const which = r.below(3) ? 'tokenizer.json' : 'tokenizer_config.json';
      folder(dir, [...tinyLlama, ...tinyTokenizer], [which, mutateJson(r, seed(`tiny-tokenizer/${which}`).toString('utf8'))]);
    },
    run: (api, dir) => loadAndRun(api, dir),
  },
  'chat-template': {
    make(r, dir) {
      folder(dir, [...tinyLlama, ...tinyTokenizer], ['chat_template.jinja', mutateTemplate(r, seed('tiny-tokenizer/chat_template.jinja').toString('utf8'))]);
    },
    run: (api, dir) => loadAndRun(api, dir),
  },
  jsonl: textData('jsonl'),
  csv: textData('csv'),
  parquet: {
    make(r, dir) {
      mkdirSync(dir, { recursive: true });
      const bytes = seed(r.below(2) ? 'data/pc.parquet' : 'data/chat.parquet');
      writeFileSync(join(dir, 'data.parquet'), mutateBytes(r, bytes));
      return { skipInvalid: r.below(2) === 0 };
    },
    run: (api, dir, options) => loadData(api, join(dir, 'data.parquet'), options),
  },
};

/** A JSONL or CSV target: the seed text mutated by lines, loaded with and without skipInvalid. */
function textData(kind) {
  return {
    make(r, dir) {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `data.${kind}`), mutateLines(r, DATA_TEXT[kind]));
      return { skipInvalid: r.below(2) === 0 };
    },
    run: (api, dir, options) => loadData(api, join(dir, `data.${kind}`), options),
  };
}

let tokenizer;
async function loadData(api, file, options) {
  tokenizer ??= await api.tokenizerFromFolder(join(fixtures, 'tiny-tokenizer'));
  const d = await api.loadDataset(file, tokenizer, { ...options, validation: 0.2, maxLength: 64 });
  for await (const _ of d.train.examples(0)) { /* every example is made */ }
}
