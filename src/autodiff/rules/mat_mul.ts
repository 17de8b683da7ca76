/**
 * MatMul (numpy semantics): Y = A @ B, batched over leading axes with broadcasting.
 *
 *   dA = dY @ B^T,  dB = A^T @ dY     (^T swaps the last two axes)
 *
 * 1-D operands are promoted as numpy does (A: [k] -> [1, k], B: [k] -> [k, 1]) and dY gets the
 * dropped axis back, so the 2-D formulas apply; the walker sums broadcast batch axes away.
 * A linear layer (A: [..., k] batched, B: [k, n]) takes both products as Gemms over the flattened
 * batch: dA = dY_flat @ B^T with B^T as Gemm's transB flag (a Transpose node of a weight would be
 * constant-folded by ORT into a second, transposed copy of it), and dB = A_flat^T @ dY_flat instead
 * of a batched product summed afterwards.
 *
 * @module
 */

import type { Value } from "../../onnx/graph.ts";
import * as op from "../../onnx/ops.ts";
import type { GradRule } from "../types.ts";
import { reshapeTo } from "../_util.ts";

function swapLast(x: Value): Value {
  const r = x.shape.length;
  const perm = Array.from({ length: r }, (_, i) => i);
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return op.transpose(x, perm);
}

/** Gradient of MatMul. */
export const matMulGrad: GradRule = ({ inputs, dys, needs }) => {
  const [a, b] = [inputs[0]!, inputs[1]!];
  const dy = dys[0]!;
  const ra = a.shape.length, rb = b.shape.length;
  if (ra === 1 && rb === 1) return [needs[0] ? op.mul(dy, b) : null, needs[1] ? op.mul(dy, a) : null];
  const a2 = ra === 1 ? op.unsqueeze(a, [0]) : a;
  const b2 = rb === 1 ? op.unsqueeze(b, [1]) : b;
  let dy2 = dy;
  if (ra === 1) dy2 = op.unsqueeze(dy2, [dy2.shape.length - 1]);
  if (rb === 1) dy2 = op.unsqueeze(dy2, [dy2.shape.length]);
  const k = a2.shape[a2.shape.length - 1], n = b2.shape[1];
  const flat = rb === 2 && ra >= 2 && typeof k === "number" && typeof n === "number";
  const g = a.graph;
  let da: Value | null = null;
  if (needs[0]) {
    if (flat && rb === 2) {
      const dyFlat = ra === 2 ? dy2 : op.reshape(dy2, [-1, n]);
      const prod = g.addNode("Gemm", [dyFlat, b2], [{ dtype: a.dtype, shape: [dyFlat.shape[0], k] }], {
        transB: { type: "int", value: 1 },
      })[0];
      // Back to A's shape, read from dY (A itself need not stay alive for its shape).
      const symbolic = a2.shape.filter((d) => typeof d !== "number").length;
      da = ra === 2 ? prod : symbolic <= 1 && !a2.shape.includes(0) ? reshapeTo(prod, a2) : g.addNode(
        "Reshape",
        [prod, op.concat([op.shapeOf(dy2, 0, ra - 1), g.int64s([k])], 0)],
        [{ dtype: a.dtype, shape: a2.shape }],
      )[0];
    } else da = op.matmul(dy2, swapLast(b2));
  }
  let db: Value | null = null;
  if (needs[1]) {
    if (rb === 2 && ra >= 3 && typeof k === "number" && typeof n === "number") {
      const aFlat = op.reshape(a2, [-1, k]), dyFlat = op.reshape(dy2, [-1, n]);
      db = g.addNode("Gemm", [aFlat, dyFlat], [{ dtype: a.dtype, shape: [k, n] }], {
        transA: { type: "int", value: 1 },
      })[0];
    } else {
      db = op.matmul(swapLast(a2), dy2);
      if (rb === 1) db = op.squeeze(db, [db.shape.length - 1]);
    }
  }
  return [da, db];
};
