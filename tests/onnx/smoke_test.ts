import assert from "node:assert/strict";
import { Graph } from "../../src/onnx/graph.ts";
import * as op from "../../src/onnx/ops.ts";
import { serializeModel } from "../../src/onnx/serialize.ts";
import { Engine } from "../../src/runtime/session.ts";
import { resolveBackend } from "../../src/runtime/backend.ts";

Deno.test("matmul + softmax runs on wasm and webgpu", async () => {
  const g = new Graph();
  const a = g.input("a", "float32", [2, 3]);
  const b = g.input("b", "float32", [3, 4]);
  g.output(op.softmax(op.matmul(a, b), -1), "y");
  const bytes = serializeModel(g);
  for (const be of ["wasm", "webgpu"] as const) {
    if (be === "webgpu") await resolveBackend("webgpu");
    const e = await Engine.create(be);
    const s = await e.createSession(bytes);
    const r = await s.run({
      a: e.tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]),
      b: e.tensor(new Float32Array(12).fill(0.5), [3, 4]),
    });
    assert.deepEqual(r.y.dims, [2, 4]);
    for (const v of r.y.data as Float32Array) assert.ok(Math.abs(v - 0.25) < 1e-6);
    await s.release();
  }
});
