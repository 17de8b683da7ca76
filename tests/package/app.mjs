// @ts-check
// A new user's script, run by tests/package/consumer.ts in an empty project where only the packed
// tarball is installed: Node, Bun and Deno each run this same file (Deno with the import rewritten
// to `npm:exo-tune`), and tsc type-checks it against the package's `.d.ts` files.
//
//   node app.mjs FIXTURES OUT [wasm|webgpu|native-cpu]   ->   one JSON line on stdout (the consumer test asserts on it)
//
// FIXTURES holds a copy of tests/fixtures/tiny-gpt2 (with its PyTorch goldens) and pairs.jsonl.
import process from "node:process";
import { Generator, loadModel, localFiles, ORT_VERSION, readAdapter, train } from "exo-tune";

const [fixtures, out, backendArg = "wasm"] = process.argv.slice(2);
if (!fixtures || !out || !["wasm", "webgpu", "native-cpu"].includes(backendArg)) {
  throw new Error("usage: app.mjs FIXTURES OUT [wasm|webgpu|native-cpu]");
}
/** @type {"wasm" | "webgpu" | "native-cpu"} */
const backend = /** @type {any} */ (backendArg);
const model = `${fixtures}/tiny-gpt2`;

// One training step: the fixture's golden EXO-pref step (plain SGD at lr 1 from the fixture's
// adapter, all 3 pairs in one batch, no clipping), whose result PyTorch saved as adapter_after_sgd_exo.
const summary = await train({
  model,
  data: `${fixtures}/pairs.jsonl`,
  out,
  loss: "exo-pref",
  beta: 0.1,
  epsilon: 1e-3,
  optimizer: "sgd",
  lr: 1,
  maxGradNorm: 0,
  batchSize: 3,
  schedule: "constant",
  initAdapter: `${model}/adapter`,
  backend,
});
const files = localFiles();
const metrics = JSON.parse((await files.readText(`${out}/metrics.jsonl`)).trim().split("\n")[0]);

// How far our adapter is from PyTorch's, relative to the size of the update (per tensor, the worst).
const before = await readAdapter(`${model}/adapter`, files);
const after = await readAdapter(out, files);
const golden = await readAdapter(`${model}/adapter_after_sgd_exo`, files);
let updateError = 0;
for (const [name, ref] of golden.tensors) {
  const a = after.tensors.get(name)?.data, b = before.tensors.get(name)?.data;
  if (!a || !b) throw new Error(`tensor ${name} missing from the trained adapter`);
  let err = 0, scale = 0;
  for (let i = 0; i < ref.data.length; i++) {
    err = Math.max(err, Math.abs(Number(a[i]) - Number(ref.data[i])));
    scale = Math.max(scale, Math.abs(Number(ref.data[i]) - Number(b[i])));
  }
  updateError = Math.max(updateError, err / scale);
}

// Generation: greedy from the golden logits' first input row, base model and with the new adapter.
const loaded = await loadModel(model);
const goldenJson = JSON.parse(await files.readText(`${model}/golden.json`));
/** @type {number[]} */
const promptIds = goldenJson.logits.input_ids[0];
const gen = await Generator.create(loaded, { backend });
const opts = { maxNewTokens: 8, temperature: 0 };
const base = (await gen.generate(promptIds, opts)).sequences[0];
await gen.setAdapter(after);
const tuned = (await gen.generate(promptIds, opts)).sequences[0];
await gen.release();

const g = /** @type {{ Deno?: unknown, Bun?: unknown }} */ (globalThis);
console.log(JSON.stringify({
  runtime: g.Deno ? "deno" : g.Bun ? "bun" : "node",
  ort: ORT_VERSION,
  steps: summary.steps,
  backend: summary.backend,
  loss: metrics.loss,
  updateError,
  base: { ids: base.tokenIds, text: base.text },
  tuned: { ids: tuned.tokenIds, text: tuned.text },
}));
// ORT's wasm threads would keep Node and Bun alive.
process.exit(0);
