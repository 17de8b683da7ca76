/**
 * Llama-family decoders (Llama 2/3, SmolLM, TinyLlama, Qwen2): RMSNorm, RoPE (plain, linear or
 * llama3 scaling), grouped-query attention, SwiGLU MLP, tied or untied LM head, and Qwen2's q/k/v
 * biases.
 *
 * `nn.Linear` weights `[out, in]` stay as stored: each projection is one Gemm with transB (a JS
 * transpose or a fused q/k/v copy would be a second copy of the weights). LoRA branches attach per
 * module (`q_proj`, `k_proj`, ...).
 *
 * @module
 */

import * as op from "../onnx/ops.ts";
import type { FamilyInputs, FamilyOutputs } from "./forward.ts";
import { activation, attention, rmsNorm } from "./layers.ts";
import { ropeTables } from "./rope.ts";

/** Builds the Llama/Qwen2 blocks and head on the shared inputs of `buildForward`. */
export function buildLlama(f: FamilyInputs): FamilyOutputs {
  const { mb, inputIds, positions, bias, dims, past } = f;
  const c = mb.model.config;
  const W = mb.model.weights;
  const tied = W.get("lm_head.weight") === W.get("model.embed_tokens.weight");
  let h = mb.embed("model.embed_tokens.weight", inputIds);
  const rope = ropeTables(mb.g, positions, c);
  const present: FamilyOutputs["present"] = [];
  const proj = (x: typeof h, name: string, bias: boolean) =>
    mb.linear(x, `${name}.weight`, bias ? `${name}.bias` : null, "out_in", name);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    h = mb.layer(h, (x) => {
      const a = rmsNorm(x, mb.bias32(`${p}.input_layernorm.weight`), c.normEps);
      const q = proj(a, `${p}.self_attn.q_proj`, c.qkvBias);
      const k = proj(a, `${p}.self_attn.k_proj`, c.qkvBias);
      const v = proj(a, `${p}.self_attn.v_proj`, c.qkvBias);
      const att = attention(q, k, v, dims, bias, rope, past?.[i]);
      present.push({ key: att.key, value: att.value });
      const y = op.add(x, proj(att.out, `${p}.self_attn.o_proj`, c.oBias));
      const m = rmsNorm(y, mb.bias32(`${p}.post_attention_layernorm.weight`), c.normEps);
      const gate = proj(m, `${p}.mlp.gate_proj`, c.mlpBias);
      const up = proj(m, `${p}.mlp.up_proj`, c.mlpBias);
      return op.add(y, proj(op.mul(activation(gate, c.activation), up), `${p}.mlp.down_proj`, c.mlpBias));
    });
  }
  const hidden = rmsNorm(h, mb.bias32("model.norm.weight"), c.normEps);
  return { hidden, head: tied ? "model.embed_tokens.weight" : "lm_head.weight", present };
}
