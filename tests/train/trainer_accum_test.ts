/**
 * Gradient accumulation and the logit temperature on the trainer path (`Trainer`, as the CLI runs
 * it). PyTorch goldens exist for neither, so each expectation is derived another way:
 *
 * - N equal micro-batches accumulated give the update of one batch of all of them: against the
 *   golden full-batch gradient (one SGD step), and against an unaccumulated run over several AdamW
 *   epochs with clipping;
 * - an epoch whose micro-batches do not divide by `gradAccum` ends with an update of the left-over
 *   ones: checked against plain (unaccumulated) steps on exactly those examples;
 * - a run with accumulation stopped and resumed (mid-epoch and at an epoch boundary) ends with the
 *   same adapter bytes as one that never stopped;
 * - `logitTemperature` τ = 2 on a model equals τ = 1 on the same model with its LM head scaled by
 *   1/2 (an independent way of dividing the logits by 2, exact in float32), for policy and reference.
 */

import assert from "node:assert/strict";
import { epochBatches, exampleLength } from "../../src/data/batching.ts";
import { encodeDataset } from "../../src/data/encode.ts";
import { readDataset } from "../../src/data/formats.ts";
import { type FileSink, type FileSource, localFiles } from "../../src/io/files.ts";
import type { LoraAdapter } from "../../src/lora/adapter.ts";
import { loadModel } from "../../src/models/load.ts";
import { parseSafetensors, serializeSafetensors, toTensorData } from "../../src/models/safetensors.ts";
import { train, type TrainOptions } from "../../src/train/trainer.ts";
import {
  adapterAt,
  checkMinusGradient,
  fileDigest,
  FX,
  goldenLoss,
  metricsOf,
  writePairs,
} from "./_trainer_support.ts";

/**
 * Update error relative to max|grad|, as in trainer_golden_test.ts: 10x the worst measured there
 * (2.0e-6, float32 step against PyTorch's float64 gradient).
 */
const TOL = 2e-5;

/** One SGD step at lr 1 without clipping from the fixture adapter: the update is minus the gradient. */
function sgdStep(model: string, data: string, out: string): TrainOptions {
  return {
    model: `${FX}/${model}`,
    data,
    out,
    optimizer: "sgd",
    lr: 1,
    maxGradNorm: 0,
    schedule: "constant",
    initAdapter: `${FX}/${model}/adapter`,
    backend: "wasm",
  };
}

Deno.test("accumulating N single-example micro-batches is the golden step of the N-example batch (wasm)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "accum-golden-" });
  try {
    for (
      const [model, loss, data, n] of [
        ["tiny-gpt2", "exo-pref", `${FX}/pairs.jsonl`, 3],
        ["tiny-llama", "dpo-rw", `${FX}/rewards.jsonl`, 2],
      ] as const
    ) {
      const out = `${dir}/${model}`;
      const s = await train({ ...sgdStep(model, data, out), loss, batchSize: 1, gradAccum: n });
      assert.equal(s.steps, 1, "one update per epoch: all N micro-batches");
      const g = await goldenLoss(model, loss);
      const worst = checkMinusGradient(
        await adapterAt(`${FX}/${model}/adapter`),
        await adapterAt(out),
        g.grad,
        TOL,
        model,
      );
      const [row] = await metricsOf(out);
      // The logged loss is the mean over micro-batches: with equal sizes, the batch loss.
      assert.ok(Math.abs(row.loss - g.loss) <= 4e-6 * Math.max(1, g.loss), `${model} loss ${row.loss} vs ${g.loss}`);
      assert.equal(row.epoch, 1);
      assert.ok(row.tokens > 0);
      console.log(`  ${model} ${loss}, ${n} micro-batches: update error ${worst.toExponential(2)} of max|grad|`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// SGD rather than AdamW: AdamW divides each update by its own gradient's size, which magnifies the
// float32 rounding of near-zero gradient entries (different summation orders differ there by 1e-4
// of the update), so it would measure AdamW's sensitivity rather than accumulation.
Deno.test("SGD with clipping and a schedule over 4 epochs: accumulation of 3 micro-batches equals batches of 3 (wasm)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "accum-adamw-" });
  try {
    const base: TrainOptions = {
      model: `${FX}/tiny-gpt2`,
      data: `${FX}/pairs.jsonl`,
      out: "",
      optimizer: "sgd",
      lr: 0.5,
      weightDecay: 0.01,
      warmupSteps: 1,
      schedule: "cosine",
      maxGradNorm: 0.05,
      epochs: 4,
      backend: "wasm",
      initAdapter: `${FX}/tiny-gpt2/adapter`,
    };
    const big = await train({ ...base, out: `${dir}/big`, batchSize: 3 });
    const acc = await train({ ...base, out: `${dir}/acc`, batchSize: 1, gradAccum: 3 });
    assert.equal(big.steps, 4);
    assert.equal(acc.steps, 4);
    const [a, b] = [await adapterAt(`${dir}/big`), await adapterAt(`${dir}/acc`)];
    const init = await adapterAt(`${FX}/tiny-gpt2/adapter`);
    assert.deepEqual([...a.tensors.keys()].sort(), [...init.tensors.keys()].sort());
    // Both runs see all 3 pairs in every update, so they agree up to float32 rounding. Scale: the
    // largest change of any entry over the run.
    const moved = maxChange(a, init);
    const d = maxDiff(a, b) / moved;
    const [ra, rb] = [await metricsOf(`${dir}/big`), await metricsOf(`${dir}/acc`)];
    assert.ok(ra[0].grad_norm > 0.05, `clipping must be active: grad norm ${ra[0].grad_norm}`);
    const dl = Math.max(...ra.map((r, i) => Math.abs(r.loss - rb[i].loss)));
    const dn = Math.max(...ra.map((r, i) => Math.abs(r.grad_norm - rb[i].grad_norm) / r.grad_norm));
    console.log(
      `  adapters differ by ${d.toExponential(2)} of the largest change (${moved.toExponential(2)}); ` +
        `losses by ${dl.toExponential(2)}, grad norms by ${dn.toExponential(2)} relative`,
    );
    // 10x the measured (3.1e-6, 7.2e-7 and 3.1e-7: float32 sums in another order).
    assert.ok(d <= 3e-5, `accumulated vs one batch: ${d}`);
    assert.ok(dl <= 7e-6, `losses differ by ${dl}`);
    assert.ok(dn <= 3e-6, `grad norms differ by ${dn}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an epoch's left-over micro-batches make its last update (wasm)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "accum-left-" });
  try {
    const seed = 5;
    // 3 pairs in micro-batches of 1, 2 per update: each epoch is an update of 2, then one of the 1 left.
    const run = await train({
      ...sgdStep("tiny-gpt2", `${FX}/pairs.jsonl`, `${dir}/run`),
      batchSize: 1,
      gradAccum: 2,
      epochs: 2,
      seed,
      checkpointEvery: 2,
    });
    assert.equal(run.steps, 4, "2 updates per epoch, 2 epochs");
    const rows = await metricsOf(`${dir}/run`);
    assert.deepEqual(rows.map((r) => r.step), [1, 2, 3, 4]);
    assert.deepEqual(rows.map((r) => r.epoch), [0.6667, 1, 1.6667, 2], "no update spans two epochs");

    // The same two updates, as plain steps on exactly those examples: the batch of the first two
    // micro-batches of epoch 0, then (from that adapter) the left-over one.
    const lines = (await Deno.readTextFile(`${FX}/pairs.jsonl`)).trim().split("\n");
    const order = (await epochOrder(`${FX}/pairs.jsonl`, seed)).map((b) => b[0]);
    await Deno.writeTextFile(`${dir}/first.jsonl`, `${lines[order[0]]}\n${lines[order[1]]}\n`);
    await Deno.writeTextFile(`${dir}/left.jsonl`, `${lines[order[2]]}\n`);
    await train({ ...sgdStep("tiny-gpt2", `${dir}/first.jsonl`, `${dir}/p1`), batchSize: 2 });
    await train({ ...sgdStep("tiny-gpt2", `${dir}/left.jsonl`, `${dir}/p2`), initAdapter: `${dir}/p1`, batchSize: 1 });
    const after2 = await adapterAt(`${dir}/run/checkpoints/step-000002`);
    const expected = await adapterAt(`${dir}/p2`);
    const scale = maxChange(expected, await adapterAt(`${FX}/tiny-gpt2/adapter`));
    const d = maxDiff(after2, expected) / scale;
    const [m1, m2] = [(await metricsOf(`${dir}/p1`))[0], (await metricsOf(`${dir}/p2`))[0]];
    const dl = Math.max(Math.abs(rows[0].loss - m1.loss), Math.abs(rows[1].loss - m2.loss));
    console.log(
      `  after epoch 1: ${d.toExponential(2)} of the largest change from plain steps; losses ${dl.toExponential(2)}`,
    );
    // 10x the measured (4.9e-7 of the update, 1.2e-7 on the losses).
    assert.ok(d <= 5e-6, `left-over update vs plain steps: ${d}`);
    assert.ok(dl <= 1.2e-6, `update losses differ from the plain steps' by ${dl}`);
    assert.equal(rows[1].tokens, m2.tokens, "the left-over update saw only its own example");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a run with accumulation resumed mid-epoch or at an epoch's end equals an uninterrupted one (wasm)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "accum-resume-" });
  try {
    const data = `${dir}/pairs.jsonl`;
    await writePairs(data, 7, 9);
    // 7 pairs, micro-batches of 2 (4 a epoch, the last of 1), 3 per update: updates of 3 and 1
    // micro-batches, 2 per epoch, 6 in all.
    const base: TrainOptions = {
      model: `${FX}/tiny-gpt2`,
      data,
      out: "",
      batchSize: 2,
      gradAccum: 3,
      epochs: 3,
      optimizer: "adamw",
      lr: 5e-3,
      warmupSteps: 2,
      maxGradNorm: 1,
      seed: 4,
      backend: "wasm",
    };
    const a = await train({ ...base, out: `${dir}/a` });
    assert.equal(a.steps, 6);
    const rowsA = await metricsOf(`${dir}/a`);
    for (const stopAt of [1, 2]) {
      const out = `${dir}/stop-${stopAt}`;
      const controller = new AbortController();
      const stopped = await train({ ...base, out, signal: controller.signal, files: abortAfter(stopAt, controller) });
      assert.equal(stopped.steps, stopAt);
      const resumed = await train({ ...base, out, resume: true });
      assert.equal(resumed.resumedFromStep, stopAt);
      assert.equal(resumed.steps, 6);
      assert.equal(
        await fileDigest(`${out}/adapter_model.safetensors`),
        await fileDigest(`${dir}/a/adapter_model.safetensors`),
        `stopped after ${stopAt}: same adapter bytes`,
      );
      const strip = (rows: Record<string, number>[]) => rows.map(({ "tokens/s": _t, step_seconds: _s, ...r }) => r);
      assert.deepEqual(strip(await metricsOf(out)), strip(rowsA));
    }
    // Another gradAccum is another run: refused, naming the option and both values.
    await assert.rejects(
      () => train({ ...base, out: `${dir}/stop-1`, resume: true, gradAccum: 2 }),
      /it was written with other options, data or model \(gradAccum 3 then, 2 now\)/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("logit temperature 2 equals the same model with its LM head halved, policy and reference (wasm)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tau-" });
  try {
    // tiny-llama has an untied LM head: logits / 2 = h · (W / 2)ᵀ, and halving is exact in float32.
    const halved = `${dir}/halved`;
    await Deno.mkdir(halved);
    for await (const e of Deno.readDir(`${FX}/tiny-llama`)) {
      if (e.isFile) await Deno.copyFile(`${FX}/tiny-llama/${e.name}`, `${halved}/${e.name}`);
    }
    const bytes = await Deno.readFile(`${FX}/tiny-llama/model.safetensors`);
    const { tensors, metadata } = parseSafetensors(bytes, "model.safetensors");
    const data = new Map([...tensors].map(([k, t]) => [k, toTensorData(t, k)]));
    const head = data.get("lm_head.weight")!;
    data.set("lm_head.weight", { ...head, data: (head.data as Float32Array).map((x) => x / 2) });
    await Deno.writeFile(`${halved}/model.safetensors`, serializeSafetensors(data, metadata));
    assert.equal((await loadModel(halved)).config.tieWordEmbeddings, false);

    const base: TrainOptions = {
      model: "",
      data: `${FX}/pairs.jsonl`,
      out: "",
      batchSize: 1,
      epochs: 2,
      lr: 1e-2,
      initAdapter: `${FX}/tiny-llama/adapter`,
      backend: "wasm",
    };
    const tau = await train({ ...base, model: `${FX}/tiny-llama`, out: `${dir}/tau`, logitTemperature: 2 });
    const halvedRun = await train({ ...base, model: halved, out: `${dir}/head`, logitTemperature: 1 });
    await train({ ...base, model: `${FX}/tiny-llama`, out: `${dir}/plain`, logitTemperature: 1 });
    assert.equal(tau.steps, 6);
    assert.equal(halvedRun.steps, 6);
    // The reference log-probs enter the loss only through u = logp − ref; the logged log-probs show
    // the policy's under the temperature, and rewards/* show u.
    const [rt, rh, rp] = [
      await metricsOf(`${dir}/tau`),
      await metricsOf(`${dir}/head`),
      await metricsOf(`${dir}/plain`),
    ];
    const keys = ["loss", "grad_norm", "rewards/chosen", "rewards/margins", "logps/chosen", "logps/rejected"];
    rt.forEach((r, i) => {
      for (const k of keys) assert.equal(r[k], rh[i][k], `step ${i + 1}: ${k}`);
    });
    assert.equal(
      await fileDigest(`${dir}/tau/adapter_model.safetensors`),
      await fileDigest(`${dir}/head/adapter_model.safetensors`),
      "the same adapter, bit for bit",
    );
    // And the temperature matters: τ = 1 trains another adapter, with other log-probs.
    assert.ok(Math.abs(rp[0]["logps/chosen"] - rt[0]["logps/chosen"]) > 1, "τ changes the log-probs");
    const changed = maxDiff(await adapterAt(`${dir}/plain`), await adapterAt(`${dir}/tau`));
    assert.ok(changed > 1e-3, `τ = 1 and τ = 2 gave nearly the same adapter (${changed})`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** The example order of epoch 0 as the trainer's sampler draws it (batches of 1). */
async function epochOrder(path: string, seed: number): Promise<number[][]> {
  const model = await loadModel(`${FX}/tiny-gpt2`);
  const ds = await readDataset(path, { vocabSize: model.config.vocabSize });
  const enc = encodeDataset(ds, model.tokenizer, { maxLength: model.config.maxPositions });
  const lengths = (enc.examples as Parameters<typeof exampleLength>[0][]).map((e) => exampleLength(e));
  return epochBatches(lengths, 0, { batchSize: 1, seed });
}

/** Local files that abort `controller` once `k` metrics lines have been appended. */
function abortAfter(k: number, controller: AbortController): FileSource & FileSink {
  const files = localFiles();
  let lines = 0;
  return {
    ...files,
    readText: (p) => files.readText(p),
    writeText: (p, t) => files.writeText(p, t),
    async appendText(path, text) {
      await files.appendText(path, text);
      if (path.endsWith("metrics.jsonl") && ++lines === k) controller.abort();
    },
  };
}

/** max |a − b| over every tensor. */
function maxDiff(a: LoraAdapter, b: LoraAdapter): number {
  let m = 0;
  for (const [k, t] of a.tensors) {
    const x = t.data as Float32Array, y = b.tensors.get(k)!.data as Float32Array;
    assert.equal(x.length, y.length, k);
    for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  }
  assert.ok(a.tensors.size > 0);
  return m;
}

/** The largest change of any entry between two adapters (the scale of an update). */
function maxChange(after: LoraAdapter, before: LoraAdapter): number {
  const m = maxDiff(after, before);
  assert.ok(m > 0, "the adapter did not move: the comparison would mean nothing");
  return m;
}
