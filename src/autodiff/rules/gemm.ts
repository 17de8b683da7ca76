/**
 * Gemm: Y = alpha * A' @ B' + beta * C, with A' = transA ? A^T : A and B' = transB ? B^T : B.
 *
 *   dA' = alpha * dY @ B'^T   ->  dA = transA ? alpha * B' @ dY^T : alpha * dY @ B'^T
 *   dB' = alpha * A'^T @ dY   ->  dB = transB ? alpha * dY^T @ A' : alpha * A'^T @ dY
 *   dC  = beta * dY           (the walker sums C's broadcast axes)
 *
 * Each product is itself one Gemm with the transposes folded into its flags.
 *
 * @module
 */

import * as op from "../../onnx/ops.ts";
import { attrFloat, attrInt, scalarLike } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Gradient of Gemm. */
export const gemmGrad: GradRule = ({ node, inputs, dys, needs }) => {
  const [a, b] = [inputs[0]!, inputs[1]!];
  const dy = dys[0]!;
  const alpha = attrFloat(node, "alpha", 1), beta = attrFloat(node, "beta", 1);
  const tA = attrInt(node, "transA", 0) === 1, tB = attrInt(node, "transB", 0) === 1;
  const da = !needs[0]
    ? null
    : tA
    ? op.gemm(b, dy, null, { alpha, transA: tB, transB: true })
    : op.gemm(dy, b, null, { alpha, transB: !tB });
  const db = !needs[1]
    ? null
    : tB
    ? op.gemm(dy, a, null, { alpha, transA: true, transB: tA })
    : op.gemm(a, dy, null, { alpha, transA: !tA });
  const dc = needs[2] ? (beta === 1 ? dy : op.mul(dy, scalarLike(dy, beta))) : null;
  return [da, db, dc];
};
