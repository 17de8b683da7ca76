/**
 * GPT-2 (`GPT2LMHeadModel`): learned absolute positions, pre-LayerNorm blocks, fused `c_attn`
 * projection, `gelu_new` MLP, LM head tied to the token embedding.
 *
 * GPT-2's `Conv1D` weights are stored `[in, out]` already, so they go into MatMul as they are.
 * The tied embedding is kept once, transposed (`[hidden, vocab]`): the LM head multiplies by it and
 * the token lookup gathers its columns (Gather on axis 1, then a small `[H, B, T] → [B, T, H]`
 * transpose), so the 50k × 768 matrix is not stored twice.
 *
 * @module
 */

import * as op from "../onnx/ops.ts";
import type { FamilyInputs, FamilyOutputs } from "./forward.ts";
import { activation, attention, linear, transpose2d } from "./layers.ts";

/** Builds GPT-2's blocks and head on the shared inputs (positions, bias) of `buildForward`. */
export function buildGpt2(f: FamilyInputs): FamilyOutputs {
  const { mb, inputIds, positions, bias, dims, past } = f;
  const c = mb.model.config;
  const H = c.hiddenSize;
  const wte = mb.model.weights.get("transformer.wte.weight")!;
  const head = mb.model.weights.get("lm_head.weight")!;
  const tied = head === wte;
  const wteT = tied
    ? mb.derived("transformer.wte.weight_t", () => ({
      dtype: "float32",
      shape: [H, c.vocabSize],
      data: transpose2d(wte.data as Float32Array, c.vocabSize, H),
    }))
    : mb.linearWeightT("lm_head.weight");
  const tok = tied
    ? op.transpose(op.gather(wteT, inputIds, 1), [1, 2, 0])
    : op.gather(mb.weight("transformer.wte.weight"), inputIds, 0);
  let h = op.add(tok, op.gather(mb.weight("transformer.wpe.weight"), positions, 0));
  const ln = (x: typeof h, name: string) =>
    op.layerNorm(x, mb.weight(`${name}.weight`), mb.weight(`${name}.bias`), -1, c.normEps);
  const present: FamilyOutputs["present"] = [];
  for (let i = 0; i < c.numLayers; i++) {
    const p = `transformer.h.${i}`;
    const a = ln(h, `${p}.ln_1`);
    const qkv = linear(
      mb,
      a,
      mb.weight(`${p}.attn.c_attn.weight`),
      mb.weight(`${p}.attn.c_attn.bias`),
      `${p}.attn.c_attn`,
    );
    const [q, k, v] = op.split(qkv, [H, H, H], -1);
    const att = attention(q, k, v, dims, bias, null, past?.[i]);
    present.push({ key: att.key, value: att.value });
    const o = linear(
      mb,
      att.out,
      mb.weight(`${p}.attn.c_proj.weight`),
      mb.weight(`${p}.attn.c_proj.bias`),
      `${p}.attn.c_proj`,
    );
    h = op.add(h, o);
    const m = ln(h, `${p}.ln_2`);
    const fc = linear(mb, m, mb.weight(`${p}.mlp.c_fc.weight`), mb.weight(`${p}.mlp.c_fc.bias`), `${p}.mlp.c_fc`);
    const down = linear(
      mb,
      activation(fc, c.activation),
      mb.weight(`${p}.mlp.c_proj.weight`),
      mb.weight(`${p}.mlp.c_proj.bias`),
      `${p}.mlp.c_proj`,
    );
    h = op.add(h, down);
  }
  const hidden = ln(h, "transformer.ln_f");
  return { hidden, headT: wteT, present };
}
