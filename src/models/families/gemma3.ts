/**
 * Gemma 3, the text model (`Gemma3ForCausalLM`, `model_type: gemma3_text`).
 *
 *   h = embed(ids) · sqrt(hidden)                       (the factor in the embedding's dtype)
 *   per layer:  a = n_in(h)
 *               q = rope_l(q_norm(q_proj(a))),  k = rope_l(k_norm(k_proj(a)))
 *               h += n_post_attn(o_proj(attn_l(q, k, v_proj(a))))      scores · query_pre_attn_scalar^-0.5
 *               h += n_post_ff(down(gelu_tanh(gate(n_pre_ff(h))) · up(n_pre_ff(h))))
 *   hidden = norm(h);   logits = cap · tanh(h Wᵀ / cap) when final_logit_softcapping is set
 *
 * Every norm is RMSNorm in Gemma's form `x / sqrt(mean(x²) + eps) · (1 + w)` (weights stored
 * zero-centred); q_norm and k_norm apply per head before RoPE. Layers are of two types
 * (`layer_types`, or every `sliding_window_pattern`-th layer full in older configs):
 * `sliding_attention` layers attend to the last `sliding_window` tokens only (keys `q - window <
 * k <= q`, the token itself included) with RoPE base `rope_local_base_freq`; `full_attention`
 * layers attend causally to everything with `rope_theta` (and `rope_scaling`). The LM head is the
 * embedding (tied), unscaled.
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import type { Value } from "../../onnx/graph.ts";
import type { Activation, ConfigReader, Json, ModelConfig, RopeSpec } from "../config_base.ts";
import type { ArchSpec, FamilyInputs, FamilyOutputs } from "../arch.ts";
import { attention, rmsNorm } from "../layers.ts";
import { ropeTables } from "../rope.ts";
import {
  type DecoderBiases,
  decoderConfig,
  decoderLayers,
  decoderWeights,
  EMBEDDING,
  gatedMlp,
  headWeight,
  PROJECTIONS,
  projections,
  ROTARY_BUFFERS,
} from "./_decoder.ts";

/** The two kinds of layers. */
export type Gemma3LayerType = "sliding_attention" | "full_attention";

/** Gemma 3's config. */
export interface Gemma3Config extends ModelConfig {
  arch: "gemma3_text";
  activation: Activation;
  /** `attention_bias`: biases on q, k, v and o. */
  attentionBias: boolean;
  /** Scores are scaled by `queryPreAttnScalar^-0.5` (not `head_dim^-0.5`). */
  queryPreAttnScalar: number;
  /** Keys a sliding layer attends to, the current token included. */
  slidingWindow: number;
  layerTypes: Gemma3LayerType[];
  /** RoPE of each layer type. */
  rope: Record<Gemma3LayerType, RopeSpec>;
}

const LAYER_TYPES: readonly string[] = ["sliding_attention", "full_attention"];

function biases(c: Gemma3Config): DecoderBiases {
  return { qkv: c.attentionBias, o: c.attentionBias, mlp: false };
}

function parseConfig(r: ConfigReader): Gemma3Config {
  r.refuse("use_bidirectional_attention", false, "a causal LM");
  r.refuse("attn_logit_softcapping", null, "Gemma 3 has no attention soft-capping");
  const base = decoderConfig(r, "gemma3_text", {
    maxPositions: 131072,
    eps: 1e-6,
    tie: true,
    headDim: 256,
    activationKey: "hidden_activation",
    activation: "gelu_new",
  });
  const cap = r.optionalPosNum("final_logit_softcapping");
  const config: Gemma3Config = {
    ...base,
    attentionBias: r.bool("attention_bias", false),
    queryPreAttnScalar: r.posNum("query_pre_attn_scalar", 256),
    slidingWindow: r.posInt("sliding_window", 4096),
    layerTypes: layerTypes(r, base.numLayers),
    rope: ropes(r),
  };
  if (cap !== null) config.logitSoftcap = cap;
  return config;
}

/** `layer_types`, or (older configs) every `sliding_window_pattern`-th layer full, the others sliding. */
function layerTypes(r: ConfigReader, n: number): Gemma3LayerType[] {
  const types = r.json.layer_types;
  if (types !== undefined && types !== null) {
    if (!Array.isArray(types) || types.length !== n || !types.every((t) => LAYER_TYPES.includes(t))) {
      r.problem(
        `layer_types must list ${n} entries (num_hidden_layers), each "sliding_attention" or "full_attention", got ${
          JSON.stringify(types)
        }`,
      );
      return new Array(n).fill("full_attention");
    }
    return types as Gemma3LayerType[];
  }
  const pattern = r.posInt("sliding_window_pattern", 6);
  return Array.from({ length: n }, (_, i) => ((i + 1) % pattern !== 0 ? "sliding_attention" : "full_attention"));
}

/**
 * RoPE per layer type: 5.x `rope_parameters: {sliding_attention: {...}, full_attention: {...}}`,
 * or 4.x `rope_theta` + `rope_scaling` (full layers) and `rope_local_base_freq` (sliding layers).
 */
function ropes(r: ConfigReader): Record<Gemma3LayerType, RopeSpec> {
  const p = r.json.rope_parameters;
  const local = r.json.rope_local_base_freq ?? 10000;
  if (p !== undefined && p !== null && typeof p === "object" && !Array.isArray(p)) {
    const per = p as Json;
    if ("full_attention" in per || "sliding_attention" in per) {
      const one = (t: Gemma3LayerType, theta: unknown): RopeSpec => {
        const q = per[t];
        if (q === undefined || q === null) return { theta: r.ropeTheta(theta, `rope_parameters.${t}`), scaling: null };
        if (typeof q !== "object" || Array.isArray(q)) {
          r.problem(`rope_parameters.${t} must be an object, got ${JSON.stringify(q)}`);
          return { theta: 10000, scaling: null };
        }
        return r.ropeOf(q as Json, `rope_parameters.${t}`, theta);
      };
      return { full_attention: one("full_attention", 1e6), sliding_attention: one("sliding_attention", local) };
    }
  }
  return {
    full_attention: r.rope(1e6),
    sliding_attention: { theta: r.ropeTheta(local, "rope_local_base_freq"), scaling: null },
  };
}

function build(f: FamilyInputs, c: Gemma3Config): FamilyOutputs {
  const { mb } = f;
  const g = mb.g;
  const rope = {
    full_attention: ropeTables(g, f.positions, c.headDim, c.rope.full_attention),
    sliding_attention: ropeTables(g, f.positions, c.headDim, c.rope.sliding_attention),
  };
  const norm = (x: Value, name: string) => rmsNorm(x, op.add(mb.bias32(`${name}.weight`), g.scalar(1)), c.normEps);
  const scale = 1 / Math.sqrt(c.queryPreAttnScalar);
  const present: FamilyOutputs["present"] = [];
  let h = mb.embedScaled(EMBEDDING, f.inputIds, Math.sqrt(c.hiddenSize));
  for (const [i, l] of decoderLayers(c, biases(c)).entries()) {
    const p = l.prefix;
    h = mb.layer(h, (x) => {
      const a = norm(x, `${p}.input_layernorm`);
      const att = attention(mb.linear(a, l.q), mb.linear(a, l.k), mb.linear(a, l.v), f.attention(i), {
        rope: rope[c.layerTypes[i]],
        scale,
        qNorm: (q) => norm(q, `${p}.self_attn.q_norm`),
        kNorm: (k) => norm(k, `${p}.self_attn.k_norm`),
      });
      present.push({ key: att.key, value: att.value });
      const y = op.add(x, norm(mb.linear(att.out, l.o), `${p}.post_attention_layernorm`));
      const m = gatedMlp(mb, norm(y, `${p}.pre_feedforward_layernorm`), l, c.activation);
      return op.add(y, norm(m, `${p}.post_feedforward_layernorm`));
    });
  }
  return { hidden: norm(h, "model.norm"), head: headWeight(mb), present };
}

/** The Gemma 3 (text) family. */
export const GEMMA3: ArchSpec<Gemma3Config> = {
  name: "Gemma 3 (text)",
  hfClass: "Gemma3ForCausalLM",
  parseConfig,
  weights: (c) =>
    decoderWeights(c, decoderLayers(c, biases(c)), () => [
      ["input_layernorm", c.hiddenSize],
      ["post_attention_layernorm", c.hiddenSize],
      ["pre_feedforward_layernorm", c.hiddenSize],
      ["post_feedforward_layernorm", c.hiddenSize],
      ["self_attn.q_norm", c.headDim],
      ["self_attn.k_norm", c.headDim],
    ]),
  embedding: EMBEDDING,
  buffers: ROTARY_BUFFERS,
  loraModules: (c) => decoderLayers(c, biases(c)).flatMap(projections),
  defaultTargets: PROJECTIONS,
  positions: "rotary",
  attentionWindows: (c) => c.layerTypes.map((t) => (t === "sliding_attention" ? c.slidingWindow : null)),
  build,
};
