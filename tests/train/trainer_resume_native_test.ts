/**
 * Resume across engines: a checkpoint written on wasm resumes on native-cpu (onnxruntime-node) and
 * the run ends within float32 tolerance of an uninterrupted native-cpu run. Same schedule as the
 * wasm resume test (AdamW, warmup + linear decay, clipping, 2 epochs, 12 updates), so the moments,
 * the schedule position and the data cursor cross the engine change.
 *
 * Tolerance: max |a − b| over every adapter element <= 2e-5 (about 8x the measured 2.6e-6: the two
 * engines round float32 sums differently, and 7 more AdamW steps carry that difference on; the
 * updates themselves are ~lr = 5e-3 per step, so a mix-up of steps, moments or cursor would show as
 * errors of that size, 100x the tolerance). Every metrics line of the resumed steps matches too.
 */

import assert from "node:assert/strict";
import { type FileSink, type FileSource, localFiles } from "../../src/io/files.ts";
import { loadCheckpoint } from "../../src/train/checkpoint.ts";
import { train, type TrainOptions } from "../../src/train/trainer.ts";
import { nativeCpuOrSkip } from "../support/native.ts";
import { adapterAt, FX, metricsOf, writePairs } from "./_trainer_support.ts";

const TOL = 2e-5;

/** Local files that abort `controller` once `k` metrics lines have been appended (as Ctrl-C does). */
function abortAfter(k: number, controller: AbortController): FileSource & FileSink {
  const files = localFiles();
  let lines = 0;
  return {
    ...files,
    async appendText(path, text) {
      await files.appendText(path, text);
      if (path.endsWith("metrics.jsonl") && ++lines === k) controller.abort();
    },
  };
}

Deno.test({
  name: "a checkpoint written on wasm resumes on native-cpu and ends within fp32 tolerance of a native-cpu run",
  ignore: !(await nativeCpuOrSkip()),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "resume-native-" });
    try {
      const data = `${dir}/pairs.jsonl`;
      await writePairs(data, 12, 5);
      const base: TrainOptions = {
        model: `${FX}/tiny-llama`,
        data,
        out: "",
        optimizer: "adamw",
        lr: 5e-3,
        weightDecay: 0.01,
        schedule: "linear",
        warmupSteps: 3,
        maxGradNorm: 1,
        batchSize: 2,
        epochs: 2,
        seed: 7,
        checkpointEvery: 2,
      };
      const a = await train({ ...base, out: `${dir}/a`, backend: "native-cpu" });
      assert.equal(a.backend, "native-cpu");
      assert.equal(a.steps, 12);

      const controller = new AbortController();
      const b = await train({
        ...base,
        out: `${dir}/b`,
        backend: "wasm",
        signal: controller.signal,
        files: abortAfter(5, controller),
      });
      assert.equal(b.backend, "wasm");
      assert.equal(b.interrupted, true);
      assert.equal((await loadCheckpoint(`${dir}/b/checkpoints/step-000005`, localFiles())).state.step, 5);
      // Read now: older checkpoints are rotated away as the resumed run writes new ones.
      const init = await adapterAt(`${dir}/b/checkpoints/step-000005`);
      const b2 = await train({ ...base, out: `${dir}/b`, backend: "native-cpu", resume: true });
      assert.equal(b2.backend, "native-cpu");
      assert.equal(b2.resumedFromStep, 5);
      assert.equal(b2.steps, 12);

      const [ta, tb] = [await adapterAt(`${dir}/a`), await adapterAt(`${dir}/b`)];
      let worst = 0, moved = 0;
      for (const [key, t] of ta.tensors) {
        const x = t.data as Float32Array, y = tb.tensors.get(key)!.data as Float32Array;
        const z = init.tensors.get(key)!.data as Float32Array;
        for (let i = 0; i < x.length; i++) {
          worst = Math.max(worst, Math.abs(x[i] - y[i]));
          moved = Math.max(moved, Math.abs(y[i] - z[i]));
        }
      }
      console.log(
        `  max |native-cpu run - wasm→native-cpu resume| ${worst.toExponential(2)}; largest move after the resume ${
          moved.toExponential(2)
        }`,
      );
      assert.ok(worst <= TOL, `adapters differ by ${worst.toExponential(2)} > ${TOL}`);
      assert.ok(moved > 100 * TOL, `the resumed steps must move the adapter (moved ${moved.toExponential(2)})`);

      const [ra, rb] = [await metricsOf(`${dir}/a`), await metricsOf(`${dir}/b`)];
      assert.equal(rb.length, 12);
      for (let i = 0; i < 12; i++) {
        assert.equal(rb[i].step, ra[i].step);
        assert.equal(rb[i].lr, ra[i].lr, `step ${i + 1}: the schedule position crosses the resume`);
        assert.ok(Math.abs(rb[i].loss - ra[i].loss) <= 1e-4, `step ${i + 1}: loss ${rb[i].loss} vs ${ra[i].loss}`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
