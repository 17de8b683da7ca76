/**
 * In-memory additions to a training model that the engine needs and the web runtime cannot give:
 * each parameter's gradient as a user output `<p>::grad`.
 *
 * Why: ORT Web 1.19 can neither save a checkpoint nor read the optimizer's momentums, and reports
 * no gradient norm. With every micro-batch's gradients in hand, the engine sums them exactly as the
 * accumulators do, reports the norm, and keeps a float32 copy of AdamW's moments for its own
 * checkpoints (see moments.ts).
 *
 * How: protobuf merges a repeated occurrence of a message field into the first one, and appends to
 * repeated fields. So appending `ModelProto { graph { node: Identity(grad) -> <p>::grad; output:
 * <p>::grad } }` to a model's bytes adds those nodes and outputs without decoding or re-encoding the
 * (possibly large) original, which works for Python's artifacts as well as ours. The files on disk
 * are never changed.
 *
 * @module
 */

import protobuf from "protobufjs/minimal.js";
import { gradOutputName } from "./names.ts";

type Writer = protobuf.Writer;

function message(w: Writer, field: number, body: (w: Writer) => void): void {
  w.uint32((field << 3) | 2).fork();
  body(w);
  w.ldelim();
}

/** Returns `model` with an `Identity(gradient) -> <p>::grad` node and graph output per parameter. */
export function withGradientOutputs(
  model: Uint8Array,
  params: readonly { name: string; shape: readonly number[] }[],
  gradientOf: ReadonlyMap<string, string>,
): Uint8Array {
  const w = protobuf.Writer.create();
  message(w, 7, (w) => {
    params.forEach((p, i) => {
      const grad = gradientOf.get(p.name);
      if (!grad) throw new Error(`withGradientOutputs(): no gradient value known for ${p.name}`);
      // NodeProto { input = 1; output = 2; name = 3; op_type = 4 }
      message(w, 1, (w) => {
        w.uint32((1 << 3) | 2).string(grad);
        w.uint32((2 << 3) | 2).string(gradOutputName(p.name));
        w.uint32((3 << 3) | 2).string(`exo_tune_grad_output_${i}`);
        w.uint32((4 << 3) | 2).string("Identity");
      });
    });
    for (const p of params) {
      // ValueInfoProto { name = 1; type = 2 { tensor_type = 1 { elem_type = 1; shape = 2 } } }
      message(w, 12, (w) => {
        w.uint32((1 << 3) | 2).string(gradOutputName(p.name));
        message(w, 2, (w) =>
          message(w, 1, (w) => {
            w.uint32(1 << 3).int32(1);
            message(w, 2, (w) => {
              for (const d of p.shape) message(w, 1, (w) => w.uint32(1 << 3).int64(d));
            });
          }));
      });
    }
  });
  const extra = w.finish();
  const out = new Uint8Array(model.byteLength + extra.byteLength);
  out.set(model, 0);
  out.set(extra, model.byteLength);
  return out;
}
