/**
 * GPT-2 (`GPT2LMHeadModel`): learned absolute positions, pre-LayerNorm blocks, fused `c_attn`
 * projection, `gelu_new` MLP, LM head tied to the token embedding.
 *
 * GPT-2's `Conv1D` weights are stored `[in, out]`, so they go into MatMul as they are; the tied
 * embedding `[vocab, hidden]` serves the token lookup (Gather) and the LM head (Gemm with transB),
 * so the 50k × 768 matrix is stored once.
 *
 * @module
 */

import * as op from "../onnx/ops.ts";
import type { FamilyInputs, FamilyOutputs } from "./forward.ts";
import { activation, attention } from "./layers.ts";

/** Builds GPT-2's blocks and head on the shared inputs (positions, bias) of `buildForward`. */
export function buildGpt2(f: FamilyInputs): FamilyOutputs {
  const { mb, inputIds, positions, bias, dims, past } = f;
  const c = mb.model.config;
  const H = c.hiddenSize;
  const tied = mb.model.weights.get("lm_head.weight") === mb.model.weights.get("transformer.wte.weight");
  let h = op.add(mb.embed("transformer.wte.weight", inputIds), mb.embed("transformer.wpe.weight", positions));
  const ln = (x: typeof h, name: string) =>
    op.layerNorm(x, mb.bias32(`${name}.weight`), mb.bias32(`${name}.bias`), -1, c.normEps);
  const present: FamilyOutputs["present"] = [];
  for (let i = 0; i < c.numLayers; i++) {
    const p = `transformer.h.${i}`;
    h = mb.layer(h, (x) => {
      const a = ln(x, `${p}.ln_1`);
      const qkv = mb.linear(a, `${p}.attn.c_attn.weight`, `${p}.attn.c_attn.bias`, "in_out", `${p}.attn.c_attn`);
      const [q, k, v] = op.split(qkv, [H, H, H], -1);
      const att = attention(q, k, v, dims, bias, null, past?.[i]);
      present.push({ key: att.key, value: att.value });
      const y = op.add(
        x,
        mb.linear(att.out, `${p}.attn.c_proj.weight`, `${p}.attn.c_proj.bias`, "in_out", `${p}.attn.c_proj`),
      );
      const fc = mb.linear(ln(y, `${p}.ln_2`), `${p}.mlp.c_fc.weight`, `${p}.mlp.c_fc.bias`, "in_out", `${p}.mlp.c_fc`);
      const act = activation(fc, c.activation);
      return op.add(y, mb.linear(act, `${p}.mlp.c_proj.weight`, `${p}.mlp.c_proj.bias`, "in_out", `${p}.mlp.c_proj`));
    });
  }
  const hidden = ln(h, "transformer.ln_f");
  return { hidden, head: tied ? "transformer.wte.weight" : "lm_head.weight", present };
}
