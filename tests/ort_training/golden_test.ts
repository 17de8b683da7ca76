/**
 * Issue #17, "Show" 1 (gradients): one step of `--backend ort-training --optimizer sgd --lr 1
 * --max-grad-norm 0` over all fixture examples changes the fixture adapter by exactly minus
 * PyTorch's gradient (golden.json `losses.float64.<loss>.grad`), for each loss on the GPT-2,
 * Llama, Qwen3 and Gemma 3 fixtures: the gradients ORT 1.19.2's TrainingSession accumulates (from our emitted training
 * model) are the goldens. For exo-pref the result also equals PEFT's `adapter_after_sgd_exo/`.
 *
 * Error of a tensor, as in the fused engine's golden test: max_i |Δ_i + grad_i| / max_i |grad_i|.
 * Measured 1.1e-6 to 3.9e-6 (float32 against PyTorch float64; the worst tiny-gemma3 exo-rw); the
 * tolerance is 5x that.
 */

import assert from "node:assert/strict";
import { train } from "../../src/train/trainer.ts";
import type { LossKind } from "../../src/train/preference_graph.ts";
import {
  adapterAt,
  checkMinusGradient,
  FX,
  goldenLoss,
  metricsOf,
  relativeDistance,
} from "../train/_trainer_support.ts";
import { FAMILY_FIXTURES } from "../support/fixture_models.ts";

const TOL = 2e-5;
const LOSSES: LossKind[] = ["exo-pref", "dpo-pref", "exo-rw", "dpo-rw"];

for (const model of FAMILY_FIXTURES) {
  Deno.test(`ort-training: one SGD step at lr 1 on ${model} is minus the golden gradient, each loss`, async () => {
    for (const loss of LOSSES) {
      const rw = loss.endsWith("-rw");
      const out = await Deno.makeTempDir({ prefix: "ort-golden-" });
      try {
        const s = await train({
          model: `${FX}/${model}`,
          data: `${FX}/${rw ? "rewards" : "pairs"}.jsonl`,
          out,
          loss,
          beta: 0.1,
          betaR: 0.1,
          epsilon: 1e-3,
          optimizer: "sgd",
          lr: 1,
          maxGradNorm: 0,
          batchSize: rw ? 2 : 3,
          schedule: "constant",
          initAdapter: `${FX}/${model}/adapter`,
          backend: "ort-training",
        });
        assert.equal(s.backend, "ort-training");
        assert.equal(s.steps, 1);
        const g = await goldenLoss(model, loss);
        const before = await adapterAt(`${FX}/${model}/adapter`), after = await adapterAt(out);
        assert.deepEqual(after.config, before.config);
        const worst = checkMinusGradient(before, after, g.grad, TOL, `${model} ${loss}`);
        if (loss === "exo-pref") {
          const d = relativeDistance(after, await adapterAt(`${FX}/${model}/adapter_after_sgd_exo`), g.grad);
          assert.ok(d <= TOL, `differs from adapter_after_sgd_exo by ${d.toExponential(2)} of max|grad|`);
          console.log(`  ${model} exo-pref ort-training vs PEFT's adapter_after_sgd_exo: ${d.toExponential(2)}`);
        }
        const [row] = await metricsOf(out);
        // float32 loss against the float64 golden: measured ~1e-7 relative.
        assert.ok(Math.abs(row.loss - g.loss) <= 1e-5 * Math.max(1, Math.abs(g.loss)), `loss ${row.loss} vs ${g.loss}`);
        assert.equal(row.lr, 1);
        assert.ok(row.grad_norm > 0 && Number.isFinite(row.grad_norm));
        assert.ok(Object.keys(row).some((k) => k.startsWith("rewards/")), "TRL-named metrics come through");
        console.log(`  ${model} ${loss} ort-training: max relative error of the update ${worst.toExponential(2)}`);
      } finally {
        await Deno.remove(out, { recursive: true });
      }
    }
  });
}
