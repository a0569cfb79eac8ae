// Suite `lora`: the fused LoRA linear layer, forward + backward (dX, dA, dB; W frozen), against the
// plain frozen linear layer's forward + backward (dX) on the same shape — target within 1.15x for
// r = 8..64 — and against PyTorch autograd doing the same LoRA step in the same run. bf16 products.
import { gemm, loraLinearBackward, loraLinearForward, runtimeInfo, Tensor } from '../../lib/index.js';
import { peerSeconds, peerVersion } from '../peers.js';
import { median, type Row } from '../table.js';
import { medianSeconds, MODELS, TOKENS } from '../timing.js';

export async function runLora(options: { reps: number; quick: boolean }): Promise<{ rows: Row[]; notes: string[] }> {
  const info = runtimeInfo();
  const torch = peerVersion();
  const rows: Row[] = [];
  const shapes: [string, number, number][] = [];
  for (const [model, list] of MODELS) {
    const picked = options.quick ? list.slice(0, 1) : [list[0]!, list[2]!];  // q_proj and up_proj
    for (const [inp, out] of picked) shapes.push([model, inp, out]);
  }
  for (const [model, inp, out] of shapes) {
    const m = TOKENS;
    const fill = (t: Tensor<'f32'>, f: number) => {
      for (let i = 0; i < t.numel; i++) t.data[i] = 0.02 * Math.sin(i * f);
      return t;
    };
    const x = fill(Tensor.zeros('f32', [m, inp]), 0.3), w = fill(Tensor.zeros('f32', [out, inp]), 0.7), dy = fill(Tensor.zeros('f32', [m, out]), 0.5);
    const flops = 4 * m * inp * out;
    // The plain frozen linear: y = x·Wᵀ, dX = dY·W.
    const y = Tensor.zeros('f32', [m, out]), dx = Tensor.zeros('f32', [m, inp]);
    const plainStep = async (repeat: number) => {
      for (let r = 0; r < repeat; r++) {
        await gemm(x, w, { transposeB: true, bf16: true, out: y });
        await gemm(dy, w, { bf16: true, out: dx });
      }
    };
    for (const r of options.quick ? [8, 64] : [8, 16, 32, 64]) {
      const adapter = { a: fill(Tensor.zeros('f32', [r, inp]), 0.9), b: fill(Tensor.zeros('f32', [out, r]), 1.1), alpha: 2 * r };
      // Outputs reused across steps, as a training loop does (and as the plain linear above).
      const buffers = { y, t: Tensor.zeros('f32', [m, r]), dx, da: Tensor.zeros('f32', [r, inp]), db: Tensor.zeros('f32', [out, r]) };
      const fusedStep = async (repeat: number) => {
        for (let i = 0; i < repeat; i++) {
          const { saved } = await loraLinearForward(x, w, adapter, { bf16: true, out: buffers });
          await loraLinearBackward(dy, x, w, adapter, saved, { bf16: true, out: buffers });
        }
      };
      // Alternate plain and fused rounds so machine drift does not bias their ratio.
      const plainRounds: number[] = [], fusedRounds: number[] = [];
      for (let round = 0; round < 3; round++) {
        plainRounds.push(await medianSeconds(plainStep, options.reps, flops / 5e11));
        fusedRounds.push(await medianSeconds(fusedStep, options.reps, flops / 5e11));
      }
      const plain = median(plainRounds), fused = median(fusedRounds);
      const peer = peerSeconds({ op: 'lora', dtype: 'bf16', m, inp, out, r, reps: options.reps, threads: info.threads });
      rows.push({
        suite: 'lora', case: `${model} ${inp}->${out} r=${r} fwd+bwd`, ours: fused * 1e3, peer: peer ? peer * 1e3 : null,
        ratio: peer ? peer / fused : null, limit: null, unit: 'ms',
        note: `plain frozen linear ${(plain * 1e3).toFixed(2)} ms: LoRA costs ${(fused / plain).toFixed(2)}x (target <= 1.15x)`,
      });
    }
  }
  return {
    rows,
    notes: [
      `ours: tunekit ${info.isa}, ${info.threads} threads, bf16 products, W frozen (f32 storage), no dropout; ${TOKENS} tokens`,
      torch ? `peer: PyTorch autograd, bf16 tensors (${torch}), y = x@W.T + s*(x@A.T)@B.T, backward to x, A, B` : 'peer: run bench/peers/setup.sh for PyTorch',
      'ratio = peer time / our time (higher is better for us)',
    ],
  };
}
