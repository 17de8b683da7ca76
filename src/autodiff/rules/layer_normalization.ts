/**
 * LayerNormalization over the axes from `axis` to the last (N elements each):
 *   mu = mean(x), var = mean((x - mu)^2), r = 1 / sqrt(var + eps), xhat = (x - mu) * r,
 *   y = xhat * scale + bias.
 *
 *   dxhat  = dy * scale
 *   dx     = r * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
 *   dscale = sum over the leading axes of dy * xhat
 *   dbias  = sum over the leading axes of dy
 *
 * A direct rule (not the decomposition) so the backward pass has the numerics of the fused op;
 * mu and r are recomputed from x rather than read from the op's optional outputs.
 *
 * @module
 */

import { GraphError } from "../../onnx/graph.ts";
import * as op from "../../onnx/ops.ts";
import { attrFloat, attrInt, scalarLike } from "../_util.ts";
import type { GradRule } from "../types.ts";

/** Gradient of LayerNormalization (first output only). */
export const layerNormalizationGrad: GradRule = ({ node, inputs, dys, needs }) => {
  if (dys[1] || dys[2]) {
    throw new GraphError(
      `LayerNormalization gradient (node ${node.name}): its Mean/InvStdDev outputs are not differentiable here`,
    );
  }
  const [x, scale] = [inputs[0]!, inputs[1]!];
  const dy = dys[0]!;
  const rank = x.shape.length;
  const a0 = attrInt(node, "axis", -1);
  const a = a0 < 0 ? a0 + rank : a0;
  const axes = Array.from({ length: rank - a }, (_, i) => a + i);
  const eps = attrFloat(node, "epsilon", 1e-5);
  const mu = op.reduceMean(x, axes, true);
  const xc = op.sub(x, mu);
  const r = op.reciprocal(op.sqrt(op.add(op.reduceMean(op.mul(xc, xc), axes, true), scalarLike(x, eps))));
  const xhat = op.mul(xc, r);
  let dx = null;
  if (needs[0]) {
    const dxhat = op.mul(dy, scale);
    const inner = op.sub(
      op.sub(dxhat, op.reduceMean(dxhat, axes, true)),
      op.mul(xhat, op.reduceMean(op.mul(dxhat, xhat), axes, true)),
    );
    dx = op.mul(r, inner);
  }
  return [dx, needs[1] ? op.mul(dy, xhat) : null, needs[2] ? dy : null];
};
