/**
 * Token log-probabilities straight from the final hidden states, without keeping the logits:
 * the LM head, the log-softmax over the vocabulary and the pick of the target token as one fused
 * region with its own gradient.
 *
 * For hidden states h (`[M, H]`, M = rows · T), the stored head W (`[V, H]`), targets t and a
 * temperature τ:
 *
 *   z = h Wᵀ / τ,   lse = log Σ_v e^{z_v},   log p(t) = z_t − lse,   z_t = h · W[t] / τ
 *
 * Forward: z is computed in vocabulary chunks of `chunk` entries; each chunk only leaves its max
 * m_c and its Σ e^{z − m_c} behind, combined into lse (the online-softmax identity
 * lse = m + log Σ_c s_c e^{m_c − m}). z_t is a dot product with the gathered target rows of W.
 *
 * Backward (`setCustomGradient`), for the cotangent d of log p(t):
 *
 *   ∂/∂h = d · W[t] / τ − Σ_c (d · softmax(z)_c) W_c / τ,   softmax(z)_c = e^{z_c − lse}
 *
 * with each chunk's z_c recomputed (a Gemm whose C input is −lse, so it yields z_c − lse at once).
 * The largest temporaries are `[M, chunk]` instead of several `[M, V]` logits kept from the
 * forward pass to the backward pass: for GPT-2 small on 4 × 128 tokens, 16 MB instead of 100 MB
 * each. Chunks run one after the other (each depends on the previous one, see `dependOn`).
 *
 * With logit soft-capping (Gemma's `final_logit_softcapping` c), z = c · tanh(h Wᵀ / c) / τ, and
 * each term of ∂/∂h gains the factor s' = 1 − tanh²(h Wᵀ / c) of its own logit:
 *
 *   ∂/∂h = d · s'_t W[t] / τ − Σ_c (d · softmax(z)_c ⊙ s'_c) W_c / τ
 *
 * Sequence log-probs only need the positions whose target is a completion token: with a mask, the
 * rows are first gathered at the mask's nonzero positions (NonZero of a graph input, on the CPU),
 * so the head's work and temporaries shrink by the prompts' share of the tokens, and the results
 * are scattered back (zeros elsewhere).
 *
 * @module
 */

import { GraphError, type Value } from "../onnx/graph.ts";
import * as op from "../onnx/ops.ts";
import { setCustomGradient } from "../autodiff/custom.ts";
import { flatten, type ModelBuilder } from "./layers.ts";

/** Vocabulary entries per chunk: bounds the `[rows · T, chunk]` temporaries. */
export const VOCAB_CHUNK = 8192;

/**
 * `log softmax(h Wᵀ / τ)[target]` per position, `[B, T]`, from the hidden states `[B, T, H]` and
 * the head weight `head` (its model weight name, stored `[V, H]`). Differentiable w.r.t. `hidden`.
 *
 * @param targets int64 `[B, T]`: every entry must be a valid id, also where it is masked out
 * @param temperature τ, a number or a float scalar value
 * @param chunk vocabulary entries per chunk
 * @param positions int64 `[P]`: compute only these flat positions (`b · T + t`); the others are 0
 */
export function buildHeadLogprobs(
  mb: ModelBuilder,
  hidden: Value,
  head: string,
  targets: Value,
  temperature: number | Value = 1,
  chunk = VOCAB_CHUNK,
  positions: Value | null = null,
): Value {
  const g = mb.g;
  const W = mb.weight(head);
  const [V, H] = W.shape as number[];
  if (hidden.shape.length !== 3 || hidden.shape[2] !== H || hidden.dtype !== "float32") {
    throw new GraphError(`head log-probs: hidden must be float32 [B, T, ${H}], got ${hidden.dtype} [${hidden.shape}]`);
  }
  if (targets.dtype !== "int64" || targets.shape.length !== 2) {
    throw new GraphError(`head log-probs: targets must be int64 [B, T], got ${targets.dtype} [${targets.shape}]`);
  }
  if (typeof temperature === "number" && !(temperature > 0)) {
    throw new RangeError(`temperature must be > 0, got ${temperature}`);
  }
  if (!(Number.isInteger(chunk) && chunk > 0)) throw new RangeError(`chunk must be a positive integer, got ${chunk}`);
  const tau = temperature;
  const inv = typeof tau === "number" ? 1 / tau : 1;
  /** x / τ, for a τ given as a graph value (a number goes into Gemm's alpha instead). */
  const byTau = (x: Value) => (typeof tau === "number" ? (tau === 1 ? x : op.mul(x, g.scalar(inv))) : op.div(x, tau));
  const cap = mb.model.config.logitSoftcap ?? null;
  const { flat: hAll, restore } = flatten(hidden); // [M, H]
  /** `x` flattened to rows `[M, ...rest]` (M = B·T, the hidden rows' dim). */
  const rowsOf = (x: Value, rest: number[]) => op.reshape(x, [-1, ...rest]);
  const tAll = rowsOf(targets, []); // [M]
  // The rows the head is computed on: all M, or the selected P (int64 positions into M).
  const pos = positions;
  if (pos && (pos.dtype !== "int64" || pos.shape.length !== 1)) {
    throw new GraphError(`head log-probs: positions must be int64 [P], got ${pos.dtype} [${pos.shape}]`);
  }
  const h2 = pos ? op.gather(hAll, pos, 0) : hAll;
  const t1 = pos ? op.gather(tAll, pos, 0) : tAll;
  const bounds: [number, number][] = [];
  for (let v0 = 0; v0 < V; v0 += chunk) bounds.push([v0, Math.min(V, v0 + chunk)]);
  /** W[v0:v1] as float32, read only once `after` exists. */
  const rows = (v0: number, v1: number, after: Value) => {
    const w = op.dependOn(W, after);
    const part = bounds.length === 1 ? w : op.slice(w, [v0], [v1], [0]);
    return op.cast(part, "float32");
  };
  /**
   * z = h Wcᵀ / τ (soft-capped: c · tanh(h Wcᵀ / c) / τ), plus C (a `[M, 1]` column) when given;
   * with a cap also s' = 1 − tanh²(h Wcᵀ / c).
   */
  const logits = (wc: Value, c: Value | null): { z: Value; slope: Value | null } => {
    if (cap !== null) {
      const t = op.tanh(op.gemm(h2, wc, null, { transB: true, alpha: 1 / cap }));
      const z = typeof tau === "number" ? op.mul(t, g.scalar(cap / tau)) : op.div(op.mul(t, g.scalar(cap)), tau);
      return { z: c ? op.add(z, c) : z, slope: op.sub(g.scalar(1), op.mul(t, t)) };
    }
    if (typeof tau === "number") return { z: op.gemm(h2, wc, c, { transB: true, alpha: inv }), slope: null };
    const z = op.div(op.gemm(h2, wc, null, { transB: true }), tau);
    return { z: c ? op.add(z, c) : z, slope: null };
  };
  /** The target rows W[t] as float32 `[M, H]` (read after `after`). */
  const targetRows = (after: Value) => op.cast(op.gather(op.dependOn(W, after), t1, 0), "float32");

  const at = op.reduceSum(op.mul(h2, targetRows(h2)), [1], false); // h · W[t], [M]
  let picked: Value, slopeT: Value | null = null;
  if (cap === null) picked = byTau(at);
  else {
    const t = op.tanh(op.mul(at, g.scalar(1 / cap)));
    picked = byTau(op.mul(t, g.scalar(cap)));
    slopeT = op.unsqueeze(op.sub(g.scalar(1), op.mul(t, t)), [1]); // [M, 1]
  }
  const maxes: Value[] = [], sums: Value[] = [];
  let after: Value = h2;
  for (const [v0, v1] of bounds) {
    const { z } = logits(rows(v0, v1, after), null); // [M, Vc]
    const m = op.reduceMax(z, [1], true); // [M, 1]
    const s = op.reduceSum(op.exp(op.sub(z, m)), [1], true);
    maxes.push(m);
    sums.push(s);
    after = s;
  }
  let lse: Value; // [M, 1]
  if (bounds.length === 1) lse = op.add(maxes[0], op.log(sums[0]));
  else {
    const mAll = op.concat(maxes, 1), sAll = op.concat(sums, 1); // [M, K]
    const top = op.reduceMax(mAll, [1], true);
    lse = op.add(top, op.log(op.reduceSum(op.mul(sAll, op.exp(op.sub(mAll, top))), [1], true)));
  }
  let lp = op.sub(picked, op.squeeze(lse, [1])); // [M] or [P]
  /** Zeros of `like`'s shape. */
  const zeros = (like: Value) => op.expand(g.scalar(0), like.shape);
  if (pos) lp = op.scatterElements(zeros(tAll), pos, lp, 0); // back to [M], 0 off the selection
  const out = op.reshape(lp, targets.shape);

  setCustomGradient(out, {
    inputs: [hidden],
    vjp: (dy) => {
      const dAll = rowsOf(dy, [1]); // [M, 1]
      const d = pos ? op.gather(dAll, pos, 0) : dAll; // [M or P, 1]
      let acc = byTau(op.mul(targetRows(d), slopeT ? op.mul(d, slopeT) : d)); // d · s'_t W[t] / τ
      const negLse = op.neg(lse);
      for (const [v0, v1] of bounds) {
        const wc = rows(v0, v1, acc);
        const { z, slope } = logits(wc, negLse);
        const p = op.exp(z); // softmax(z) over this chunk
        const dz = slope ? op.mul(op.mul(p, op.neg(d)), slope) : op.mul(p, op.neg(d));
        const dh = typeof tau === "number" ? op.gemm(dz, wc, null, { alpha: inv }) : op.div(op.gemm(dz, wc), tau);
        acc = op.add(acc, dh);
      }
      // Selected rows back into [M, H] (the others get no gradient).
      const full = pos ? op.scatterND(zeros(hAll), op.unsqueeze(pos, [1]), acc) : acc;
      return [restore(full, H)];
    },
  });
  return out;
}

/**
 * Masked sums of {@link buildHeadLogprobs}: `Σ_t mask[b, t] · log p(targets[b, t])`, `[B]`.
 *
 * @param mask float `[B, T]`, 1 on positions whose target is a completion token
 */
export function buildHeadSequenceLogprobs(
  mb: ModelBuilder,
  hidden: Value,
  head: string,
  targets: Value,
  mask: Value,
  temperature: number | Value = 1,
  chunk = VOCAB_CHUNK,
): Value {
  // The head runs only where the mask is nonzero (the completion tokens): their flat positions.
  // Its count is named `positions_*` (the completion tokens), which the bench binds to size the head.
  const nz = op.nonZero(op.reshape(mask, [-1]), "positions");
  const lp = buildHeadLogprobs(mb, hidden, head, targets, temperature, chunk, op.squeeze(nz, [0]));
  const m = mask.dtype === lp.dtype ? mask : op.cast(mask, lp.dtype);
  return op.reduceSum(op.mul(lp, m), [1]);
}
