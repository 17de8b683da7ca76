/**
 * Creates the all-losses float32 session on WebGPU with verbose logging, so that a parent test can
 * read ORT's node placement from this process's stderr.
 */

import { serializeModel } from "../../src/onnx/serialize.ts";
import { configureRuntime } from "../../src/runtime/ort.ts";
import { Engine } from "../../src/runtime/session.ts";
import { buildLossGraph } from "./_graph.ts";

configureRuntime({ logLevel: 0 });
const engine = await Engine.create("webgpu");
const shape = { b: 2, k: 4, p: 3 };
// β and ε as graph inputs, then as constants (as training builds the graph).
for (const constants of [undefined, { betaPi: 0.1, betaR: 0.1, eps: 1e-3 }]) {
  const session = await engine.createSession(serializeModel(buildLossGraph("float32", shape, constants)), {
    verbose: true,
  });
  await session.release();
}
