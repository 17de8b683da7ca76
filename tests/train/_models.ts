/**
 * Small models for the training-step tests, built from the op builders: an MLP classifier and a
 * one-layer causal transformer LM, both with a symbolic batch dim so one session serves any batch.
 */

import { Graph, type Value } from "../../src/onnx/graph.ts";
import * as op from "../../src/onnx/ops.ts";
import { Rng } from "../../src/util/rng.ts";

/** A model graph with its trainable inputs, loss and initial parameter values. */
export interface TestModel {
  graph: Graph;
  params: Value[];
  loss: Value;
  init: Map<string, Float32Array>;
  metrics: Record<string, Value>;
}

function initParam(rng: Rng, shape: number[], scale: number): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

/** Mean cross-entropy of logits [N, C] against int64 labels [N], written without LogSoftmax. */
function crossEntropy(logits: Value, labels: Value): Value {
  const logp = op.sub(logits, op.reduceLogSumExp(logits, [-1], true));
  const picked = op.gatherElements(logp, op.unsqueeze(labels, [1]), 1);
  return op.neg(op.reduceMean(picked, [0, 1], false));
}

/** x [batch, inDim] -> tanh(x W1 + b1) W2 + b2 -> cross-entropy with labels [batch]. */
export function mlp(inDim: number, hidden: number, classes: number, seed = 1): TestModel {
  const g = new Graph("mlp");
  const rng = new Rng(seed);
  const w1 = g.input("w1", "float32", [inDim, hidden]);
  const b1 = g.input("b1", "float32", [hidden]);
  const w2 = g.input("w2", "float32", [hidden, classes]);
  const b2 = g.input("b2", "float32", [classes]);
  const x = g.input("x", "float32", ["batch", inDim]);
  const y = g.input("y", "int64", ["batch"]);
  const h = op.tanh(op.add(op.matmul(x, w1), b1));
  const logits = op.add(op.matmul(h, w2), b2);
  const loss = crossEntropy(logits, y);
  const acc = op.reduceMean(op.cast(op.equal(op.argMax(logits, -1), y), "float32"), [0]);
  const init = new Map([
    ["w1", initParam(rng, [inDim, hidden], 1 / Math.sqrt(inDim))],
    ["b1", new Float32Array(hidden)],
    ["w2", initParam(rng, [hidden, classes], 1 / Math.sqrt(hidden))],
    ["b2", new Float32Array(classes)],
  ]);
  return { graph: g, params: [w1, b1, w2, b2], loss, init, metrics: { accuracy: acc } };
}

/** A synthetic classification batch: class = argmax of a fixed random projection of x. */
export function mlpBatch(rng: Rng, n: number, inDim: number, classes: number): { x: Float32Array; y: BigInt64Array } {
  const proj = new Rng(99);
  const p = Float64Array.from({ length: inDim * classes }, () => proj.normal());
  const x = Float32Array.from({ length: n * inDim }, () => rng.normal());
  const y = new BigInt64Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0, bestV = -Infinity;
    for (let c = 0; c < classes; c++) {
      let s = 0;
      for (let k = 0; k < inDim; k++) s += x[i * inDim + k] * p[k * classes + c];
      if (s > bestV) [best, bestV] = [c, s];
    }
    y[i] = BigInt(best);
  }
  return { x, y };
}

/**
 * One pre-LN transformer block LM: tokens [batch, seq] -> embedding + positions -> LN ->
 * single-head causal attention -> residual -> LN -> GELU MLP -> residual -> LN -> logits ->
 * next-token cross-entropy. Everything but the token inputs is trainable.
 */
export function transformer(vocab: number, seq: number, d: number, seed = 2): TestModel {
  const g = new Graph("tiny_transformer");
  const rng = new Rng(seed);
  const init = new Map<string, Float32Array>();
  const params: Value[] = [];
  const param = (name: string, shape: number[], scale: number | "ones" | "zeros") => {
    const v = g.input(name, "float32", shape);
    params.push(v);
    const n = shape.reduce((a, b) => a * b, 1);
    init.set(
      name,
      scale === "ones"
        ? new Float32Array(n).fill(1)
        : scale === "zeros"
        ? new Float32Array(n)
        : initParam(rng, shape, scale),
    );
    return v;
  };
  const emb = param("emb", [vocab, d], 0.5);
  const pos = param("pos", [seq, d], 0.1);
  const ln1s = param("ln1.w", [d], "ones"), ln1b = param("ln1.b", [d], "zeros");
  const wq = param("wq", [d, d], 1 / Math.sqrt(d)), wk = param("wk", [d, d], 1 / Math.sqrt(d));
  const wv = param("wv", [d, d], 1 / Math.sqrt(d)), wo = param("wo", [d, d], 1 / Math.sqrt(d));
  const ln2s = param("ln2.w", [d], "ones"), ln2b = param("ln2.b", [d], "zeros");
  const w1 = param("mlp.w1", [d, 4 * d], 1 / Math.sqrt(d)), b1 = param("mlp.b1", [4 * d], "zeros");
  const w2 = param("mlp.w2", [4 * d, d], 1 / Math.sqrt(4 * d)), b2 = param("mlp.b2", [d], "zeros");
  const lnfs = param("lnf.w", [d], "ones"), lnfb = param("lnf.b", [d], "zeros");
  const head = param("head", [d, vocab], 1 / Math.sqrt(d));

  const tokens = g.input("tokens", "int64", ["batch", seq]);
  let x = op.add(op.gather(emb, tokens, 0), pos); // [batch, seq, d]
  const h = op.layerNorm(x, ln1s, ln1b, -1);
  const q = op.matmul(h, wq), k = op.matmul(h, wk), v = op.matmul(h, wv);
  const scores = op.mul(op.matmul(q, op.transpose(k, [0, 2, 1])), g.scalar(1 / Math.sqrt(d)));
  const causal = g.constant(
    Uint8Array.from({ length: seq * seq }, (_, i) => (i % seq <= Math.floor(i / seq) ? 1 : 0)),
    [seq, seq],
    "bool",
  );
  const masked = op.where(causal, scores, g.scalar(-1e9));
  const attn = op.matmul(op.softmax(masked, -1), v);
  x = op.add(x, op.matmul(attn, wo));
  const h2 = op.layerNorm(x, ln2s, ln2b, -1);
  const u = op.add(op.matmul(h2, w1), b1);
  const gelu = op.mul(op.mul(u, g.scalar(0.5)), op.add(g.scalar(1), op.erf(op.mul(u, g.scalar(Math.SQRT1_2)))));
  x = op.add(x, op.add(op.matmul(gelu, w2), b2));
  const logits = op.matmul(op.layerNorm(x, lnfs, lnfb, -1), head); // [batch, seq, vocab]
  // Next-token loss: positions 0..seq-2 predict tokens 1..seq-1.
  const pred = op.reshape(op.slice(logits, [0], [seq - 1], [1]), [-1, vocab]);
  const target = op.reshape(op.slice(tokens, [1], [seq], [1]), [-1]);
  const loss = crossEntropy(pred, target);
  return { graph: g, params, loss, init, metrics: {} };
}
