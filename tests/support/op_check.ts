/**
 * Runs an {@link OpCase} on an ONNX Runtime engine and checks it against the float64 reference:
 * output element types and shapes must equal what the builder inferred (and the reference's shape),
 * values must agree within the case's tolerance for the run's float type.
 *
 * @module
 */

import type { DType } from "../../src/onnx/dtype.ts";
import { Graph, isStatic, type Value } from "../../src/onnx/graph.ts";
import { serializeModel } from "../../src/onnx/serialize.ts";
import { type Engine, type OrtTensor, readTensor } from "../../src/runtime/session.ts";
import type { OpCase, Tolerance } from "./op_cases.ts";
import type { NdArray } from "./reference_ops.ts";

/** Float types a case can run in. */
export type FloatType = "float32" | "float64";

/** Relative and absolute error allowed, by tolerance kind and float type. */
export function allowedError(t: Tolerance, dtype: FloatType, backend: string): { rtol: number; atol: number } {
  if (t.kind === "exact") return { rtol: 0, atol: 0 };
  const scale = t.scale ?? 1;
  if (dtype === "float64") return { rtol: 1e-12, atol: 1e-12 * scale };
  // WebGPU shaders use fast exp/log/tanh approximations; allow a little more than the wasm kernels.
  const trans = backend === "webgpu" ? 3e-4 : 1e-4;
  return t.kind === "trans" ? { rtol: trans, atol: 1e-6 * scale } : { rtol: 1e-5, atol: 1e-6 * scale };
}

/** An ORT tensor holding an NdArray in the given element type. */
export function toOrt(engine: Engine, x: NdArray, dtype: DType): OrtTensor {
  switch (dtype) {
    case "float32":
      return engine.tensor(Float32Array.from(x.data), x.shape);
    case "float64":
      return engine.tensor(Float64Array.from(x.data), x.shape);
    case "int64":
      return engine.tensor(BigInt64Array.from(x.data, (v) => BigInt(v)), x.shape);
    case "int32":
      return engine.tensor(Int32Array.from(x.data), x.shape);
    case "bool":
      return engine.tensor(Uint8Array.from(x.data), x.shape, "bool");
    default:
      throw new Error(`toOrt: unsupported dtype ${dtype}`);
  }
}

/** An ORT tensor read back as an NdArray (int64 and bool become numbers). */
export async function fromOrt(t: OrtTensor): Promise<NdArray> {
  const data = await readTensor(t);
  const values = data instanceof BigInt64Array ? Array.from(data, Number) : (data as ArrayLike<number>);
  return { shape: [...t.dims], data: Float64Array.from(values) };
}

/** Builds the case's graph with inputs `in0..` in the given float type and outputs `out0..`. */
export function buildCase(c: OpCase, dtype: FloatType): { graph: Graph; outputs: Value[] } {
  const graph = new Graph(c.op);
  const xs = c.inputs.map((inp, i) => graph.input(`in${i}`, inp.kind === "float" ? dtype : inp.kind, inp.value.shape));
  const built = c.build(xs, dtype);
  const outputs = Array.isArray(built) ? built : [built];
  outputs.forEach((v, i) => graph.output(v, `out${i}`));
  return { graph, outputs };
}

/** Runs one case and throws a message naming the op, the case and the first mismatch. */
export async function checkCase(engine: Engine, c: OpCase, dtype: FloatType): Promise<void> {
  const where = `${c.op} (${c.describe}) on ${engine.backend} ${dtype}`;
  const { graph, outputs } = buildCase(c, dtype);
  const feeds: Record<string, OrtTensor> = {};
  c.inputs.forEach((inp, i) => (feeds[`in${i}`] = toOrt(engine, inp.value, inp.kind === "float" ? dtype : inp.kind)));
  let result: Record<string, OrtTensor>;
  try {
    const session = await engine.createSession(serializeModel(graph));
    try {
      result = await session.run(feeds);
    } finally {
      await session.release();
    }
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`, { cause: e });
  }
  const built = c.reference(c.inputs.map((x) => x.value), dtype);
  const expected = Array.isArray(built) ? built : [built];
  if (expected.length !== outputs.length) {
    throw new Error(`${where}: builder returned ${outputs.length} outputs, reference ${expected.length}`);
  }
  const { rtol, atol } = allowedError(c.tolerance, dtype, engine.backend);
  for (let k = 0; k < outputs.length; k++) {
    const v = outputs[k], t = result[`out${k}`], want = expected[k];
    if (!isStatic(v.shape)) throw new Error(`${where}: output ${k} inferred symbolic shape [${v.shape}]`);
    if (t.type !== v.dtype) throw new Error(`${where}: output ${k} is ${t.type} but the builder inferred ${v.dtype}`);
    if (t.dims.join() !== v.shape.join()) {
      throw new Error(`${where}: output ${k} has dims [${t.dims}] but the builder inferred [${v.shape}]`);
    }
    if (want.shape.join() !== v.shape.join()) {
      throw new Error(`${where}: output ${k}: the builder inferred [${v.shape}], the reference gives [${want.shape}]`);
    }
    const got = await fromOrt(t);
    for (let i = 0; i < want.data.length; i++) {
      const g = got.data[i], e = want.data[i];
      const ok = Number.isNaN(e) ? Number.isNaN(g) : g === e || Math.abs(g - e) <= atol + rtol * Math.abs(e);
      if (!ok) {
        throw new Error(
          `${where}: output ${k}[${i}] = ${g}, reference ${e} (|diff| ${Math.abs(g - e)}, rtol ${rtol}, atol ${atol})`,
        );
      }
    }
  }
}
