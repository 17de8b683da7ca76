/**
 * Llama-family decoders (Llama 2/3, SmolLM, TinyLlama, Qwen2): RMSNorm, RoPE (plain, linear or
 * llama3 scaling), grouped-query attention, SwiGLU MLP, tied or untied LM head, and Qwen2's q/k/v
 * biases.
 *
 * `nn.Linear` weights `[out, in]` are transposed once per model into `[in, out]` initializers, and
 * the projections that read the same input are fused: q/k/v into one MatMul, gate/up into another.
 * LoRA branches still attach per module (`q_proj`, `k_proj`, ...) after the fused MatMul's split.
 *
 * @module
 */

import * as op from "../onnx/ops.ts";
import type { Value } from "../onnx/graph.ts";
import type { FamilyInputs, FamilyOutputs } from "./forward.ts";
import { activation, attention, concatVectors, fuseLinearWeights, linear, rmsNorm, withLora } from "./layers.ts";
import { ropeTables } from "./rope.ts";

/** Builds the Llama/Qwen2 blocks and head on the shared inputs of `buildForward`. */
export function buildLlama(f: FamilyInputs): FamilyOutputs {
  const { mb, inputIds, positions, bias, dims, past } = f;
  const c = mb.model.config;
  const W = mb.model.weights;
  const qDim = c.numHeads * c.headDim, kvDim = c.numKvHeads * c.headDim, I = c.intermediateSize;
  const embed = W.get("model.embed_tokens.weight")!;
  const tied = W.get("lm_head.weight") === embed;
  let h: Value;
  let headT: Value;
  if (tied) {
    // One transposed copy serves the lookup (Gather on axis 1) and the LM head.
    headT = mb.linearWeightT("model.embed_tokens.weight");
    h = op.transpose(op.gather(headT, inputIds, 1), [1, 2, 0]);
  } else {
    h = op.gather(mb.weight("model.embed_tokens.weight"), inputIds, 0);
    headT = mb.linearWeightT("lm_head.weight");
  }
  const rope = ropeTables(mb.g, positions, c);
  const present: FamilyOutputs["present"] = [];
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    const a = rmsNorm(h, mb.weight(`${p}.input_layernorm.weight`), c.normEps);
    const names = ["q_proj", "k_proj", "v_proj"].map((n) => `${p}.self_attn.${n}`);
    const wqkv = mb.derived(
      `${p}.self_attn.qkv_proj.weight_t`,
      () => fuseLinearWeights(names.map((n) => W.get(`${n}.weight`)!)),
    );
    const bqkv = c.qkvBias
      ? mb.derived(`${p}.self_attn.qkv_proj.bias`, () => concatVectors(names.map((n) => W.get(`${n}.bias`)!)))
      : null;
    const [q0, k0, v0] = op.split(linear(mb, a, wqkv, bqkv), [qDim, kvDim, kvDim], -1);
    const q = withLora(mb, q0, a, names[0]);
    const k = withLora(mb, k0, a, names[1]);
    const v = withLora(mb, v0, a, names[2]);
    const att = attention(q, k, v, dims, bias, rope, past?.[i]);
    present.push({ key: att.key, value: att.value });
    const oName = `${p}.self_attn.o_proj`;
    const o = linear(
      mb,
      att.out,
      mb.linearWeightT(`${oName}.weight`),
      c.oBias ? mb.weight(`${oName}.bias`) : null,
      oName,
    );
    h = op.add(h, o);

    const m = rmsNorm(h, mb.weight(`${p}.post_attention_layernorm.weight`), c.normEps);
    const gu = [`${p}.mlp.gate_proj`, `${p}.mlp.up_proj`];
    const wgu = mb.derived(
      `${p}.mlp.gate_up_proj.weight_t`,
      () => fuseLinearWeights(gu.map((n) => W.get(`${n}.weight`)!)),
    );
    const bgu = c.mlpBias
      ? mb.derived(`${p}.mlp.gate_up_proj.bias`, () => concatVectors(gu.map((n) => W.get(`${n}.bias`)!)))
      : null;
    const [g0, u0] = op.split(linear(mb, m, wgu, bgu), [I, I], -1);
    const act = op.mul(activation(withLora(mb, g0, m, gu[0]), c.activation), withLora(mb, u0, m, gu[1]));
    const dName = `${p}.mlp.down_proj`;
    const d = linear(
      mb,
      act,
      mb.linearWeightT(`${dName}.weight`),
      c.mlpBias ? mb.weight(`${dName}.bias`) : null,
      dName,
    );
    h = op.add(h, d);
  }
  const hidden = rmsNorm(h, mb.weight("model.norm.weight"), c.normEps);
  return { hidden, headT, present };
}
