// Before/after check of a change to the training step: two builds of tunekit loaded in one
// process (each its own addon), their SmolLM2 LoRA steps alternated, so both see the same machine
// state — on a shared host, separate runs drift by more than the change being measured.
// Usage: node bench/ab-step.mjs <before: path to dist/lib/index.js> <after: …> <model> <fp32|bf16|qlora> <pairs> [batch, 4]
// (qlora: the projections re-quantized to NF4, bf16 steps)
// (a checkout of the old commit, `git worktree add /tmp/old <rev> && cd /tmp/old && npm install`,
// gives the before build). Prints the medians, the median of the per-pair ratios after/before and the minima.
const [before, after, path, mode, pairs, batch = '4'] = process.argv.slice(2);
const load = async (lib) => {
  const { loadModel } = await import(lib);
  const m = await loadModel(path, mode === 'qlora' ? { quantize: 'nf4' } : {});
  m.addLora({ r: 8, alpha: 16 });
  return m;
};
const builds = { before: await load(before), after: await load(after) };
const ids = Array.from({ length: Number(batch) }, (_, b) => Array.from({ length: 256 }, (_, i) => ((b * 256 + i) * 7919) % 49152));
const step = async (m) => {
  const t0 = process.hrtime.bigint();
  await m.trainStep({ inputIds: ids, labels: ids }, { bf16: mode !== 'fp32' });
  await m.optimizerStep({ lr: 1e-4 });
  return Number(process.hrtime.bigint() - t0) / 1e9;
};
await step(builds.before), await step(builds.after); // warm-up (bf16: packs the weight panels)
const t = { before: [], after: [] }, ratio = [];
for (let i = 0; i < Number(pairs); i++) {
  const r = {};
  for (const k of i % 2 ? ['after', 'before'] : ['before', 'after']) r[k] = await step(builds[k]);
  t.before.push(r.before), t.after.push(r.after), ratio.push(r.after / r.before);
}
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
console.log(JSON.stringify({
  mode, batch: Number(batch), pairs: Number(pairs), beforeMedian: +med(t.before).toFixed(3), afterMedian: +med(t.after).toFixed(3),
  ratioMedian: +med(ratio).toFixed(3), beforeMin: +Math.min(...t.before).toFixed(3), afterMin: +Math.min(...t.after).toFixed(3),
}));
