// Bun smoke test: the bundle (dist/exo-tune.js, from `deno task build`) and mod.ts itself import
// under Bun and run a graph on the wasm backend, or on another one named second (native-cpu: the
// bundle loads onnxruntime-node lazily). Run by .ci/run with `bun tests/bun/smoke.ts <bundle|mod> [backend]`.
const target = process.argv[2] ?? "bundle";
const backend = process.argv[3] ?? "wasm";
// The bundle is mod.ts compiled, so it has mod.ts's API (and no type declarations of its own).
const lib =
  (target === "mod"
    ? await import("../../mod.ts")
    : await import("../../dist/exo-tune.js" as string)) as typeof import("../../mod.ts");
const { Graph, ops, serializeModel, Engine, resolveBackend } = lib;

const g = new Graph("bun_smoke");
const a = g.input("a", "float32", [2, 3]);
const b = g.input("b", "float32", [3, 2]);
g.output(ops.softmax(ops.matmul(a, b), -1), "y");
const choice = await resolveBackend(backend as "wasm");
const engine = await Engine.create(choice.backend);
const session = await engine.createSession(serializeModel(g));
const out = await session.run({
  a: engine.tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]),
  b: engine.tensor(new Float32Array([1, 0, 0, 1, 1, 1]), [3, 2]),
});
const y = Array.from(out.y.data as Float32Array);
// Row 0: logits [1+3, 2+3] = [4, 5] -> softmax; row 1: [4+6, 5+6] = [10, 11].
const e = 1 / (1 + Math.E);
const expected = [e, 1 - e, e, 1 - e];
// The length first: every() on an empty output would pass.
const ok = y.length === expected.length && y.every((v, i) => Math.abs(v - expected[i]) < 1e-6);
await session.release();
console.log(`bun smoke (${target}, ${choice.backend}): ${ok ? "ok" : "FAILED"} ${JSON.stringify(y)}`);
process.exit(ok ? 0 : 1);
