/**
 * Issue #17, "Show" 1 (trajectories): the same EXO-pref LoRA run — fixture model, fixture adapter
 * and pairs, 20 updates, linear schedule with warmup, clipping at 1 — on `--backend ort-training`
 * (ORT Web 1.19.2's TrainingSession on our emitted artifacts) and on the fused wasm engine (ORT Web
 * 1.30) ends with the same adapter, for SGD and AdamW on both fixture architectures, and with
 * gradient accumulation (also where an epoch ends with fewer micro-batches than an update takes).
 *
 * "Equal within tol" is, per tensor, max_i |a_i − b_i| <= tol · max_i |b_i| (relative to the
 * tensor's scale; element-wise ratios are meaningless for elements near zero). Measured (wasm,
 * deterministic): SGD <= 6.1e-7, AdamW <= 2.7e-6, AdamW with accumulation 2.5e-6, so the issue's
 * 1e-5 holds. The differences are float32 ones, not the engines': ORT 1.19.2's kernels differ
 * from 1.30's in the last bits (the *fused* graph itself, run by 1.19.2's inference build, differs
 * from 1.30 by 5e-7 (SGD) to 1.5e-6 (AdamW) here), and ORT's AdamWOptimizer forms 1 − β2 in float32
 * (0.00099998713) where PyTorch, and so the fused engine, uses float32(0.001).
 *
 * From a fresh adapter (lora_B = 0) AdamW is worse conditioned: A's gradient is exactly 0 at the
 * first update and then tiny (∝ B), near AdamW's ε = 1e-8 in places, where lr·m/(√v + ε) depends
 * on the gradient's last bits. Measured 6.6e-5 on tiny-gpt2 (the fused graph alone on 1.19.2 vs
 * 1.30: 3.0e-5), so that case is held to 7e-4, 10x its measured error.
 */

import assert from "node:assert/strict";
import { train, type TrainOptions } from "../../src/train/trainer.ts";
import { adapterAt, FX, metricsOf } from "../train/_trainer_support.ts";
import { tensorRelative } from "./_support.ts";

/** Runs the same options on both engines; returns the adapters' distance and the loss trajectories'. */
async function bothEngines(options: Omit<TrainOptions, "out" | "backend">) {
  const outs: string[] = [];
  try {
    for (const backend of ["wasm", "ort-training"] as const) {
      const out = await Deno.makeTempDir({ prefix: `vs-fused-${backend}-` });
      outs.push(out);
      const s = await train({ ...options, out, backend });
      assert.equal(s.steps, 20);
      assert.equal(s.backend, backend);
    }
    const [fused, ort] = [await adapterAt(outs[0]), await adapterAt(outs[1])];
    const [mf, mo] = [await metricsOf(outs[0]), await metricsOf(outs[1])];
    assert.deepEqual(mo.map((r) => r.lr), mf.map((r) => r.lr), "the same learning rate at every update");
    const lossRel = Math.max(...mf.map((r, i) => Math.abs(r.loss - mo[i].loss) / Math.abs(r.loss)));
    const normRel = Math.max(...mf.map((r, i) => Math.abs(r.grad_norm - mo[i].grad_norm) / r.grad_norm));
    return { adapter: tensorRelative(ort.tensors, fused.tensors), lossRel, normRel };
  } finally {
    for (const o of outs) await Deno.remove(o, { recursive: true });
  }
}

const base = {
  data: `${FX}/pairs.jsonl`,
  loss: "exo-pref" as const,
  maxSteps: 20,
  epochs: 100,
  schedule: "linear" as const,
  warmupSteps: 2,
  maxGradNorm: 1,
  batchSize: 3,
};

for (const model of ["tiny-gpt2", "tiny-llama"]) {
  for (const [optimizer, lr] of [["sgd", 0.5], ["adamw", 1e-3]] as const) {
    Deno.test(`20 ${optimizer} updates on ${model}: ort-training and the fused wasm engine end within 1e-5`, async () => {
      const r = await bothEngines({
        ...base,
        model: `${FX}/${model}`,
        initAdapter: `${FX}/${model}/adapter`,
        optimizer,
        lr,
      });
      console.log(
        `  ${model} ${optimizer}: adapter ${r.adapter.worst.toExponential(2)} (${r.adapter.key}), loss ${
          r.lossRel.toExponential(2)
        }, grad norm ${r.normRel.toExponential(2)}`,
      );
      assert.ok(r.adapter.worst <= 1e-5, `adapters differ by ${r.adapter.worst.toExponential(2)} in ${r.adapter.key}`);
      // Per-update losses and gradient norms: measured <= 4.7e-6 relative (SGD drives the loss to ~0.2).
      assert.ok(r.lossRel <= 5e-5 && r.normRel <= 5e-5, `loss ${r.lossRel}, grad norm ${r.normRel}`);
    });
  }
}

Deno.test("20 AdamW updates of 3 accumulated micro-batches on tiny-llama: both engines end within 1e-5", async () => {
  const r = await bothEngines({
    ...base,
    model: `${FX}/tiny-llama`,
    initAdapter: `${FX}/tiny-llama/adapter`,
    optimizer: "adamw",
    lr: 1e-3,
    batchSize: 1,
    gradAccum: 3,
  });
  console.log(
    `  tiny-llama adamw, 3 micro-batches: adapter ${r.adapter.worst.toExponential(2)}, loss ${
      r.lossRel.toExponential(2)
    }`,
  );
  assert.ok(r.adapter.worst <= 1e-5, `adapters differ by ${r.adapter.worst.toExponential(2)} in ${r.adapter.key}`);
  assert.ok(r.lossRel <= 5e-5 && r.normRel <= 5e-5, `loss ${r.lossRel}, grad norm ${r.normRel}`);
});

Deno.test("20 AdamW updates of 2 micro-batches over 3 an epoch (the left-over one alone): both engines end within 1e-5", async () => {
  // 3 pairs, batch 1, gradAccum 2: each epoch is an update of 2 micro-batches and one of the 1 left
  // over, which ort-training divides by its own count (the optimizer model's per-update table).
  const r = await bothEngines({
    ...base,
    model: `${FX}/tiny-llama`,
    initAdapter: `${FX}/tiny-llama/adapter`,
    optimizer: "adamw",
    lr: 1e-3,
    batchSize: 1,
    gradAccum: 2,
  });
  console.log(
    `  tiny-llama adamw, 2 + 1 micro-batches: adapter ${r.adapter.worst.toExponential(2)}, loss ${
      r.lossRel.toExponential(2)
    }`,
  );
  assert.ok(r.adapter.worst <= 1e-5, `adapters differ by ${r.adapter.worst.toExponential(2)} in ${r.adapter.key}`);
  assert.ok(r.lossRel <= 5e-5 && r.normRel <= 5e-5, `loss ${r.lossRel}, grad norm ${r.normRel}`);
});

Deno.test("20 AdamW updates from a fresh adapter (lora_B = 0) on tiny-gpt2: within 7e-4 (see the module doc)", async () => {
  const r = await bothEngines({ ...base, model: `${FX}/tiny-gpt2`, loraR: 4, seed: 1, optimizer: "adamw", lr: 1e-3 });
  console.log(`  tiny-gpt2 adamw, fresh adapter: adapter ${r.adapter.worst.toExponential(2)} (${r.adapter.key})`);
  assert.ok(r.adapter.worst <= 7e-4, `adapters differ by ${r.adapter.worst.toExponential(2)} in ${r.adapter.key}`);
  assert.ok(r.lossRel <= 5e-5, `loss ${r.lossRel}`);
});
