/**
 * Serialization checked by what ORT computes from the bytes: symbolic dims bound to different
 * sizes in one session, initializers of every element type, external data (same results as the
 * inline model, on wasm and WebGPU; registered sources by reference, or copied in with `inline`),
 * and every attribute type (int, ints, float, floats, string,
 * strings, tensor, graph).
 */

import assert from "node:assert/strict";
import type { DType } from "../../src/onnx/dtype.ts";
import { attr, Graph, GraphError, type TensorData, type Value } from "../../src/onnx/graph.ts";
import * as op from "../../src/onnx/ops.ts";
import { registerExternalSource, serializeModel, validateGraph } from "../../src/onnx/serialize.ts";
import { resolveBackend } from "../../src/runtime/backend.ts";
import { configureRuntime } from "../../src/runtime/ort.ts";
import { Engine, type OrtTensor } from "../../src/runtime/session.ts";
import { fromOrt, toOrt } from "../support/op_check.ts";
import * as ref from "../support/reference_ops.ts";
import type { NdArray } from "../support/reference_ops.ts";

configureRuntime({ wasmThreads: 1 });
let wasmEngine: Promise<Engine> | undefined;
const wasm = () => (wasmEngine ??= Engine.create("wasm"));

/** Deterministic values in [-1, 1) rounded to float32. */
function values(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 1073741824 - 1;
  });
}

function f32(shape: number[], seed: number): TensorData {
  return { dtype: "float32", shape, data: values(shape.reduce((a, b) => a * b, 1), seed) };
}

const asNd = (t: TensorData): NdArray => ref.nd(t.shape, Array.from(t.data as ArrayLike<number>, Number));

function assertClose(got: NdArray, want: NdArray, tol: number, what: string): void {
  assert.deepEqual(got.shape, want.shape, `${what}: shape`);
  for (let i = 0; i < want.data.length; i++) {
    const d = Math.abs(got.data[i] - want.data[i]);
    assert.ok(d <= tol * (1 + Math.abs(want.data[i])), `${what}[${i}]: ${got.data[i]} vs ${want.data[i]}`);
  }
}

async function runOnce(
  e: Engine,
  g: Graph | ReturnType<typeof serializeModel>,
  feeds: Record<string, OrtTensor> = {},
): Promise<Record<string, OrtTensor>> {
  const s = await e.createSession(g instanceof Graph ? serializeModel(g) : g);
  try {
    return await s.run(feeds);
  } finally {
    await s.release();
  }
}

Deno.test("symbolic dims bind to different sizes in one session", async () => {
  const e = await wasm();
  const g = new Graph("symbolic");
  const x = g.input("x", "float32", ["batch", "seq", 4]);
  const wt = f32([4, 3], 1);
  const w = g.initializer("w", wt);
  const bias = g.input("bias", "float32", [4]);
  const outs: Record<string, Value> = {
    probs: op.softmax(op.matmul(x, w), -1),
    pairs: op.reduceSum(op.reshape(x, [0, 0, 2, 2]), [3]),
    // "seq" sits at another axis: the target shape is assembled at run time from Shape(x) pieces.
    swapped: op.reshape(x, ["seq", "batch", 4]),
    flat: op.reshape(x, ["batch", -1]),
    // A moved symbol and an inferred -1 together (the -1 slot holds a fresh symbol).
    seqFirst: op.reshape(x, ["seq", -1]),
    inner: op.slice(x, [1], [-1], [1]),
    doubled: op.concat([x, x], 1),
    biased: op.add(x, op.expandAs(bias, x)),
    spread: op.expand(op.reduceSum(x, [2], true), ["batch", "seq", 4]),
    running: op.cumsum(x, 1),
    dims: op.shapeOf(x, 0, 2),
  };
  for (const [name, v] of Object.entries(outs)) g.output(v, name);
  assert.deepEqual(outs.probs.shape, ["batch", "seq", 3]);
  assert.deepEqual(outs.swapped.shape, ["seq", "batch", 4]);
  assert.deepEqual(outs.biased.shape, ["batch", "seq", 4]);
  assert.deepEqual(outs.dims.shape, [2]);
  const session = await e.createSession(serializeModel(g));
  try {
    for (const [batch, seq] of [[1, 1], [2, 3], [3, 5], [1, 2]]) {
      const xv = ref.nd([batch, seq, 4], values(batch * seq * 4, batch * 10 + seq));
      const bv = ref.nd([4], [0.5, -1, 2, 0]);
      const r = await session.run({ x: toOrt(e, xv, "float32"), bias: toOrt(e, bv, "float32") });
      const want: Record<string, NdArray> = {
        probs: ref.softmax(ref.matmul(xv, asNd(wt)), -1),
        pairs: ref.reduceSum(ref.reshape(xv, [0, 0, 2, 2]), [3]),
        swapped: ref.reshape(xv, [seq, batch, 4]),
        flat: ref.reshape(xv, [batch, -1]),
        seqFirst: ref.reshape(xv, [seq, -1]),
        inner: ref.slice(xv, [1], [-1], [1]),
        doubled: ref.concat([xv, xv], 1),
        biased: ref.add(xv, bv),
        spread: ref.expand(ref.reduceSum(xv, [2], true), [batch, seq, 4]),
        running: ref.cumsum(xv, 1),
        dims: ref.nd([2], [batch, seq]),
      };
      for (const [name, v] of Object.entries(outs)) {
        const got = await fromOrt(r[name]);
        const bound = v.shape.map((d, i) => (d === "batch" ? batch : d === "seq" ? seq : got.shape[i]));
        assert.deepEqual(got.shape, bound, `${name} at batch ${batch}, seq ${seq}: dims vs [${v.shape}]`);
        assertClose(got, want[name], 1e-5, `${name} at batch ${batch}, seq ${seq}`);
      }
    }
  } finally {
    await session.release();
  }
});

Deno.test("initializers of every element type load with their values", async () => {
  const e = await wasm();
  const g = new Graph("inits");
  const tensors: [string, TensorData, number[]][] = [
    ["f32", f32([2, 3], 7), Array.from(values(6, 7))],
    ["f64", { dtype: "float64", shape: [], data: new Float64Array([Math.PI]) }, [Math.PI]],
    // Beyond 2^32 and negative: int64 must travel as 8 little-endian bytes.
    ["i64", { dtype: "int64", shape: [3], data: new BigInt64Array([-3n, 2n ** 40n, 7n]) }, [-3, 2 ** 40, 7]],
    ["i32", { dtype: "int32", shape: [2], data: new Int32Array([-70000, 5]) }, [-70000, 5]],
    ["i8", { dtype: "int8", shape: [2], data: new Int8Array([-128, 127]) }, [-128, 127]],
    ["u8", { dtype: "uint8", shape: [2], data: new Uint8Array([0, 255]) }, [0, 255]],
    ["bool", { dtype: "bool", shape: [3], data: new Uint8Array([1, 0, 1]) }, [1, 0, 1]],
    // float16 bit patterns: 1, -2, 0.333251953125, 65504.
    [
      "f16",
      { dtype: "float16", shape: [2, 2], data: new Uint16Array([0x3c00, 0xc000, 0x3555, 0x7bff]) },
      [1, -2, 0.333251953125, 65504],
    ],
    ["empty", { dtype: "float32", shape: [0, 2], data: new Float32Array(0) }, []],
  ];
  for (const [name, t] of tensors) g.output(op.cast(g.initializer(name, t), "float64"), `${name}_out`);
  const r = await runOnce(e, g);
  for (const [name, t, want] of tensors) {
    const got = await fromOrt(r[`${name}_out`]);
    assert.deepEqual(got.shape, [...t.shape], name);
    assert.deepEqual(Array.from(got.data), want, name);
  }
});

/** A model with weights large and small: y = x W + b, z = v[idx], u = -table (1024 bytes), s = -small. */
function weightsGraph(): { g: Graph; tensors: Record<string, TensorData> } {
  const g = new Graph("weights");
  const tensors: Record<string, TensorData> = {
    W: f32([64, 32], 3), // 8192 bytes: external
    b: f32([32], 4), // 128 bytes: inline
    v: f32([300], 5), // 1200 bytes: external
    idx: { dtype: "int64", shape: [200], data: BigInt64Array.from({ length: 200 }, (_, i) => BigInt((i * 7) % 300)) },
    table: f32([256], 6), // 1024 bytes: at the threshold, external
    small: f32([255], 8), // 1020 bytes: inline
  };
  const w: Record<string, Value> = {};
  for (const [k, t] of Object.entries(tensors)) w[k] = g.initializer(k, t);
  const x = g.input("x", "float32", [2, 64]);
  g.output(op.add(op.matmul(x, w.W), w.b), "y");
  g.output(op.gather(w.v, w.idx), "z");
  g.output(op.neg(w.table), "u");
  g.output(op.neg(w.small), "s");
  return { g, tensors };
}

Deno.test("external data: weights above the threshold leave the model and compute the same", async () => {
  const { g, tensors } = weightsGraph();
  const inline = serializeModel(g);
  const external = serializeModel(g, { externalDataThreshold: 1024, externalDataPath: "adapter.weights" });
  assert.equal(inline.externalData, undefined);
  assert.ok(external.externalData);
  assert.equal(external.externalData.length, 1);
  const [blob] = external.externalData;
  assert.equal(blob.path, "adapter.weights");
  // W at 0 (8192), v at 8192 (1200), idx at 12288 after 4 KiB alignment (1600), table at 16384 (1024).
  assert.equal(blob.data.byteLength, 16384 + 1024);
  assert.ok(inline.model.byteLength - external.model.byteLength > 8192 + 1200 + 1600 + 1024 - 400);
  const wb = blob.data;
  assert.deepEqual(new Float32Array(wb.slice(8192, 8192 + 1200).buffer), tensors.v.data);
  assert.equal(serializeModel(g, { externalDataThreshold: 1 << 20 }).externalData, undefined);

  const x = ref.nd([2, 64], values(128, 9));
  const want = {
    y: ref.add(ref.matmul(x, asNd(tensors.W)), asNd(tensors.b)),
    z: ref.gather(asNd(tensors.v), asNd(tensors.idx)),
  };
  const backends: ("wasm" | "webgpu")[] = ["wasm"];
  try {
    await resolveBackend("webgpu");
    backends.push("webgpu");
  } catch (err) {
    if (Deno.env.get("CI") === "true") throw err;
    console.warn(`Skipping the WebGPU external-data check: ${(err as Error).message}`);
  }
  for (const be of backends) {
    const e = be === "wasm" ? await wasm() : await Engine.create("webgpu");
    const a = await runOnce(e, inline, { x: toOrt(e, x, "float32") });
    const b = await runOnce(e, external, { x: toOrt(e, x, "float32") });
    for (const name of ["y", "z", "u", "s"]) {
      assert.deepEqual((await fromOrt(b[name])).data, (await fromOrt(a[name])).data, `${be} ${name}`);
    }
    assertClose(await fromOrt(b.y), want.y, 1e-5, `${be} y`);
    assertClose(await fromOrt(b.z), want.z, 0, `${be} z`);
  }
});

Deno.test("inline: views into a registered source are copied into the model and compute the same", async () => {
  // A "file" of 2 KiB with a float32 [16, 32] weight 0 bytes in (above SOURCE_MIN_BYTES).
  const file = new Uint8Array(2048);
  new Float32Array(file.buffer).set(values(512, 11));
  registerExternalSource(file, "w.safetensors");
  const g = new Graph("src");
  const w = g.initializer("W", { dtype: "float32", shape: [16, 32], data: new Float32Array(file.buffer, 0, 512) });
  const x = g.input("x", "float32", [2, 16]);
  g.output(op.matmul(x, w), "y");

  const byRef = serializeModel(g);
  assert.deepEqual(byRef.externalData?.map((f) => [f.path, f.data]), [["w.safetensors", file]], "the file itself");
  const inline = serializeModel(g, { inline: true });
  assert.equal(inline.externalData, undefined);
  assert.ok(inline.model.byteLength - byRef.model.byteLength >= 2048 - 100, "the weight's bytes are in the model");
  assert.throws(
    () => serializeModel(g, { inline: true, externalDataThreshold: 1024 }),
    (e) => e instanceof GraphError && /`inline` writes no external data/.test(e.message),
  );

  const e = await wasm();
  const xs = ref.nd([2, 16], values(32, 12));
  const a = await runOnce(e, byRef, { x: toOrt(e, xs, "float32") });
  const b = await runOnce(e, inline, { x: toOrt(e, xs, "float32") });
  assert.deepEqual((await fromOrt(b.y)).data, (await fromOrt(a.y)).data);
});

/** A Constant node carrying one attribute; returns its output. */
function constant(g: Graph, dtype: DType, shape: number[], name: string, a: ReturnType<typeof attr.int>): Value {
  return g.addNode("Constant", [], [{ dtype, shape }], { [name]: a })[0];
}

Deno.test("attributes of every type reach ORT intact", async () => {
  const e = await wasm();
  const g = new Graph("attributes");
  const bigInts = [-3, 0, 7, 2 ** 40, -(2 ** 40)];
  const floats = [1.5, -0.25, 3e38, 1e-40, 0.1];
  g.output(constant(g, "int64", [5], "value_ints", attr.ints(bigInts)), "ints");
  g.output(constant(g, "int64", [], "value_int", attr.int(-5)), "int");
  g.output(constant(g, "float32", [5], "value_floats", attr.floats(floats)), "floats");
  g.output(constant(g, "float32", [], "value_float", attr.float(-0.1)), "float");
  const tensorF64: TensorData = { dtype: "float64", shape: [2, 1], data: new Float64Array([0.1, -1e300]) };
  g.output(constant(g, "float64", [2, 1], "value", attr.tensor(tensorF64)), "tensor_f64");
  const tensorI64: TensorData = { dtype: "int64", shape: [3], data: new BigInt64Array([-1n, 2n ** 50n, 0n]) };
  g.output(constant(g, "int64", [3], "value", attr.tensor(tensorI64)), "tensor_i64");
  // strings: a string tensor cast to float. The intermediate's dtype is never written (no value_info).
  const text = g.addNode("Constant", [], [{ dtype: "uint8", shape: [3] }], {
    value_strings: attr.strings(["1.5", "-2", "300"]),
  })[0];
  g.output(g.addNode("Cast", [text], [{ dtype: "float32", shape: [3] }], { to: attr.int(1) })[0], "strings");
  // string: ScatterElements' reduction picks how duplicates combine.
  const data = g.initializer("data", { dtype: "float32", shape: [3], data: new Float32Array([1, 2, 3]) });
  const idx = g.initializer("idx", { dtype: "int64", shape: [3], data: new BigInt64Array([0n, 0n, 2n]) });
  const upd = g.initializer("upd", { dtype: "float32", shape: [3], data: new Float32Array([4, 5, 6]) });
  for (const red of ["add", "mul", "max"]) {
    const y = g.addNode("ScatterElements", [data, idx, upd], [{ dtype: "float32", shape: [3] }], {
      axis: attr.int(0),
      reduction: attr.string(red),
    })[0];
    g.output(y, `scatter_${red}`);
  }
  // float: LeakyRelu's slope.
  const neg = g.initializer("neg", { dtype: "float32", shape: [2], data: new Float32Array([-4, 4]) });
  g.output(g.addNode("LeakyRelu", [neg], [{ dtype: "float32", shape: [2] }], { alpha: attr.float(0.125) })[0], "leaky");
  // graph: If with two constant branches; Unicode names travel as UTF-8.
  const cond = g.input("cond·ψ", "bool", []);
  const branch = (name: string, v: number[]) => {
    const sub = new Graph(name);
    sub.output(sub.constant(new Float32Array(v), [v.length]), `${name}_out`);
    return { type: "graph" as const, value: sub };
  };
  const chosen = g.addNode("If", [cond], [{ dtype: "float32", shape: [2] }], {
    then_branch: branch("then", [1, 2]),
    else_branch: branch("else", [-1, -2]),
  })[0];
  g.output(chosen, "ψ_chosen");

  const model = serializeModel(g);
  const session = await e.createSession(model);
  try {
    assert.deepEqual(session.inputNames, ["cond·ψ"]);
    for (const c of [1, 0]) {
      const r = await session.run({ "cond·ψ": toOrt(e, ref.nd([], [c]), "bool") });
      const read = async (n: string) => Array.from((await fromOrt(r[n])).data);
      assert.deepEqual(await read("ψ_chosen"), c ? [1, 2] : [-1, -2]);
      if (!c) continue;
      assert.deepEqual(await read("ints"), bigInts);
      assert.deepEqual(await read("int"), [-5]);
      assert.deepEqual(r.int.dims, []);
      assert.deepEqual(await read("floats"), floats.map(Math.fround));
      assert.deepEqual(await read("float"), [Math.fround(-0.1)]);
      assert.deepEqual(await read("tensor_f64"), [0.1, -1e300]);
      assert.deepEqual(r.tensor_f64.dims, [2, 1]);
      assert.deepEqual(await read("tensor_i64"), [-1, 2 ** 50, 0]);
      assert.deepEqual(await read("strings"), [1.5, -2, 300]);
      assert.deepEqual(await read("scatter_add"), [1 + 4 + 5, 2, 3 + 6]);
      assert.deepEqual(await read("scatter_mul"), [1 * 4 * 5, 2, 3 * 6]);
      assert.deepEqual(await read("scatter_max"), [5, 2, 6]);
      assert.deepEqual(await read("leaky"), [-0.5, 4]);
    }
  } finally {
    await session.release();
  }
});

Deno.test("outputs: an input, an initializer or one value twice become distinct outputs", async () => {
  const e = await wasm();
  const g = new Graph("outputs");
  const x = g.input("x", "float32", [2]);
  const c = g.initializer("c", { dtype: "float32", shape: [2], data: new Float32Array([3, 4]) });
  const y = op.add(x, c);
  g.output(x, "x_again");
  g.output(c, "c_out");
  g.output(y);
  g.output(y);
  g.output(y, "y_named");
  assert.equal(new Set(g.outputs.map((v) => v.name)).size, 5);
  const r = await runOnce(e, g, { x: toOrt(e, ref.nd([2], [1, 2]), "float32") });
  const names = g.outputs.map((v) => v.name);
  const got = await Promise.all(names.map(async (n) => Array.from((await fromOrt(r[n])).data)));
  assert.deepEqual(got, [[1, 2], [3, 4], [4, 6], [4, 6], [4, 6]]);
});

Deno.test("validateGraph names the node that uses an undefined value, and a graph without outputs", () => {
  const g = new Graph("broken");
  assert.throws(() => validateGraph(g), (err: unknown) => err instanceof GraphError && /no outputs/.test(err.message));
  const x = g.input("x", "float32", [2]);
  const ghost = { ...x, name: "ghost" };
  const y = g.addNode("Relu", [ghost], [{ dtype: "float32", shape: [2] }])[0];
  g.output(y);
  assert.throws(
    () => serializeModel(g),
    (err: unknown) => err instanceof GraphError && err.message.includes(`"ghost"`) && err.message.includes("Relu"),
  );
});
