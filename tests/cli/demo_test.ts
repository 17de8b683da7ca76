import assert from "node:assert/strict";

// The main job, shortened: a few updates on the bundled model and data, then the held-out report.
Deno.test("demo trains, writes a PEFT adapter and reports held-out metrics before and after", async () => {
  const out = await Deno.makeTempDir({ prefix: "exo-demo-" });
  try {
    const r = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "src/cli/main.ts",
        "demo",
        "--backend",
        "wasm",
        "--max-steps",
        "4",
        "--samples",
        "1",
        "--reward-prompts",
        "4",
        "--out",
        out,
        "--json",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(r.stderr);
    assert.equal(r.code, 0, stderr);
    const report = JSON.parse(new TextDecoder().decode(r.stdout));
    assert.equal(report.backend, "wasm");
    assert.equal(report.train.steps, 4);
    assert.equal(report.before.pairs, 179);
    // Before training the policy is the reference: every implicit reward is exactly 0.
    assert.equal(report.before["rewards/accuracies"], 0);
    assert.equal(report.before["rewards/margins"], 0);
    // After a few updates the adapter is no longer zero, so the rewards move.
    assert.notEqual(report.after["rewards/margins"], 0);
    // The oracle reward (VADER) of sampled completions is a real number in [-1, 1] for both models.
    assert.equal(report.reward.prompts, 4);
    for (const k of ["base", "tuned"]) {
      assert.ok(report.reward[k] >= -1 && report.reward[k] <= 1, `${k}: ${report.reward[k]}`);
    }
    // KL(tuned || base) from the tuned model's own samples at T = 1: finite, with its standard error;
    // after 4 updates it is small (a true KL is >= 0; the estimate may dip below by its noise).
    assert.ok(Number.isFinite(report.reward.kl.mean) && report.reward.kl.se >= 0, JSON.stringify(report.reward.kl));
    assert.ok(report.reward.kl.mean > -3 * report.reward.kl.se - 1e-3, JSON.stringify(report.reward.kl));
    assert.ok(report.reward.tunedT1.mean >= -1 && report.reward.tunedT1.mean <= 1);
    assert.equal(report.samples.length, 1);
    assert.equal(typeof report.samples[0].tuned, "string");
    const cfg = JSON.parse(await Deno.readTextFile(`${out}/adapter_config.json`));
    assert.equal(cfg.peft_type, "LORA");
    assert.ok((await Deno.stat(`${out}/adapter_model.safetensors`)).size > 0);
    const lines = (await Deno.readTextFile(`${out}/metrics.jsonl`)).trim().split("\n");
    assert.equal(lines.length, 4);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
