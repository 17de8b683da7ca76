/**
 * Issue #6, "Show" 2: a run stopped after k steps and resumed ends with the same adapter, bit for bit
 * on wasm, as a run that never stopped (AdamW, linear schedule with warmup, clipping, 2 epochs, so the
 * optimizer moments, the schedule position, the data cursor and the epoch change all cross the
 * resume). Also: the interrupted run leaves an atomic checkpoint with its cursor, a crash resumes from
 * the last periodic checkpoint and drops the metrics of the steps it redoes, and resuming with other
 * options (or starting a fresh run over an earlier one) is refused with `--out` untouched.
 */

import assert from "node:assert/strict";
import { type FileSink, type FileSource, localFiles } from "../../src/io/files.ts";
import { loadCheckpoint } from "../../src/train/checkpoint.ts";
import { train, type TrainOptions } from "../../src/train/trainer.ts";
import { fileDigest, FX, listTree, metricsOf, runTrainCli, snapshot, writePairs } from "./_trainer_support.ts";

/** 12 pairs, batches of 2, 2 epochs: 12 updates, 6 per epoch. */
async function setup() {
  const dir = await Deno.makeTempDir({ prefix: "resume-" });
  const data = `${dir}/pairs.jsonl`;
  await writePairs(data, 12, 5);
  const base = {
    model: `${FX}/tiny-gpt2`,
    data,
    optimizer: "adamw" as const,
    lr: 5e-3,
    weightDecay: 0.01,
    schedule: "linear" as const,
    warmupSteps: 3,
    maxGradNorm: 1,
    batchSize: 2,
    epochs: 2,
    seed: 7,
    checkpointEvery: 2,
    backend: "wasm" as const,
  };
  // The same run as CLI arguments (for the refusals, which must exit 2).
  const argv = [
    "--model",
    base.model,
    "--data",
    data,
    "--optimizer",
    "adamw",
    "--lr",
    "5e-3",
    "--weight-decay",
    "0.01",
    "--schedule",
    "linear",
    "--warmup-steps",
    "3",
    "--max-grad-norm",
    "1",
    "--batch-size",
    "2",
    "--epochs",
    "2",
    "--seed",
    "7",
    "--checkpoint-every",
    "2",
    "--backend",
    "wasm",
  ]; // deno-fmt-ignore
  return { dir, base, argv };
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

/** Runs until `k` updates are done, then stops through the AbortSignal (as Ctrl-C does). */
async function interrupted(options: TrainOptions, k: number) {
  const controller = new AbortController();
  return await train({ ...options, signal: controller.signal, files: abortAfter(k, controller) });
}

/** The per-step values that must match exactly (tokens/s and step_seconds are timings). */
function comparable(rows: Record<string, number>[]) {
  return rows.map(({ "tokens/s": _t, step_seconds: _s, ...rest }) => rest);
}

const ADAPTER = "adapter_model.safetensors";

Deno.test("a run interrupted after 5 of 12 steps and resumed ends with the same adapter bytes (wasm)", async () => {
  const { dir, base, argv } = await setup();
  try {
    // A: uninterrupted.
    const outA = `${dir}/a`;
    const a = await train({ ...base, out: outA });
    assert.equal(a.steps, 12);
    assert.equal(a.interrupted, false);
    const rowsA = await metricsOf(outA);
    assert.equal(rowsA.length, 12);
    assert.deepEqual(rowsA.map((r) => r.step), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert.deepEqual(await listTree(`${outA}/checkpoints`), [
      "step-000010/",
      "step-000010/adapter_config.json",
      "step-000010/adapter_model.safetensors",
      "step-000010/optimizer.safetensors",
      "step-000010/trainer_state.json",
      "step-000012/",
      "step-000012/adapter_config.json",
      "step-000012/adapter_model.safetensors",
      "step-000012/optimizer.safetensors",
      "step-000012/trainer_state.json",
    ]);

    // B: stopped after 5 steps: a checkpoint with the cursor, no final adapter, nothing half-written.
    const outB = `${dir}/b`;
    const b = await interrupted({ ...base, out: outB }, 5);
    assert.equal(b.interrupted, true);
    assert.equal(b.steps, 5);
    assert.ok(!(await listTree(outB)).includes(ADAPTER), "an interrupted run writes no final adapter");
    assert.deepEqual((await listTree(`${outB}/checkpoints`)).filter((p) => p.endsWith("/")), [
      "step-000004/",
      "step-000005/",
    ]);
    assert.deepEqual((await listTree(outB)).filter((p) => p.includes(".tmp")), [], "no temporary files left");
    const ck = await loadCheckpoint(`${outB}/checkpoints/step-000005`, localFiles());
    assert.equal(ck.state.step, 5);
    assert.deepEqual(ck.state.cursor, { epoch: 0, batchIndex: 5 });
    assert.equal(ck.state.metricsLines, 5);
    assert.ok(ck.optimizer.size > 0, "the AdamW moments are saved");
    assert.equal((await metricsOf(outB)).length, 5);

    // Resuming with other options, or a fresh run over it, is refused before anything is written.
    const before = await snapshot(outB);
    const other = await runTrainCli([...argv, "--out", outB, "--resume", "--lr", "1e-3"]);
    assert.equal(other.code, 2, other.stderr);
    assert.equal(
      other.stderr,
      `error: Cannot resume from ${outB}/checkpoints/step-000005: it was written with other options, data or model ` +
        "(--lr 0.005 then, 0.001 now). Use the same options as the interrupted run, or a new --out\n",
    );
    const fresh = await runTrainCli([...argv, "--out", outB]);
    assert.equal(fresh.code, 2, fresh.stderr);
    assert.equal(
      fresh.stderr,
      `error: --out ${outB} already holds checkpoints of an earlier run (${outB}/checkpoints/step-000005): ` +
        "pass --resume to continue it, or use a new --out\n",
    );
    assert.deepEqual(await snapshot(outB), before, "--out untouched by the refused runs");

    // B resumed: the same adapter, bit for bit, and the same metrics.
    const b2 = await train({ ...base, out: outB, resume: true });
    assert.equal(b2.resumedFromStep, 5);
    assert.equal(b2.steps, 12);
    assert.equal(b2.interrupted, false);
    assert.equal(await fileDigest(`${outB}/${ADAPTER}`), await fileDigest(`${outA}/${ADAPTER}`));
    assert.equal(
      await Deno.readTextFile(`${outB}/adapter_config.json`),
      await Deno.readTextFile(`${outA}/adapter_config.json`),
    );
    assert.equal(
      await fileDigest(`${outB}/checkpoints/step-000012/optimizer.safetensors`),
      await fileDigest(`${outA}/checkpoints/step-000012/optimizer.safetensors`),
      "the final optimizer moments match too",
    );
    const rowsB = await metricsOf(outB);
    assert.equal(rowsB.length, 12);
    assert.deepEqual(comparable(rowsB), comparable(rowsA));
    assert.deepEqual((await listTree(outB)).filter((p) => p.includes(".tmp")), [], "no temporary files left");

    // C: a crash after step 7 whose last complete checkpoint is the periodic one at step 6; a half-written
    // checkpoint (temporary dir) and one without its state file are ignored. The resume redoes step 7
    // and drops its old metrics line.
    const outC = `${dir}/c`;
    await interrupted({ ...base, out: outC }, 7);
    await Deno.remove(`${outC}/checkpoints/step-000007`, { recursive: true });
    await Deno.mkdir(`${outC}/checkpoints/.step-000008.123.tmp`);
    await Deno.writeTextFile(`${outC}/checkpoints/.step-000008.123.tmp/trainer_state.json`, "{");
    await Deno.mkdir(`${outC}/checkpoints/step-000009`);
    assert.equal((await metricsOf(outC)).length, 7);
    const c2 = await train({ ...base, out: outC, resume: true });
    assert.equal(c2.resumedFromStep, 6);
    assert.equal(c2.steps, 12);
    assert.equal(await fileDigest(`${outC}/${ADAPTER}`), await fileDigest(`${outA}/${ADAPTER}`));
    assert.deepEqual(comparable(await metricsOf(outC)), comparable(rowsA));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resuming a finished run changes nothing; --resume on an empty --out starts from scratch (wasm)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "resume-done-" });
  try {
    const base = {
      model: `${FX}/tiny-gpt2`,
      data: `${FX}/pairs.jsonl`,
      batchSize: 1,
      epochs: 2,
      backend: "wasm" as const,
    };
    const out = `${dir}/out`;
    const first = await train({ ...base, out, resume: true });
    assert.equal(first.resumedFromStep, null);
    assert.equal(first.steps, 6);
    const adapter = await fileDigest(`${out}/${ADAPTER}`);
    const metrics = await Deno.readTextFile(`${out}/metrics.jsonl`);
    const again = await train({ ...base, out, resume: true });
    assert.equal(again.resumedFromStep, 6);
    assert.equal(again.steps, 6);
    assert.equal(await fileDigest(`${out}/${ADAPTER}`), adapter);
    assert.equal(await Deno.readTextFile(`${out}/metrics.jsonl`), metrics);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
