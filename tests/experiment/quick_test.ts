/**
 * `experiment --quick` end to end, as CI runs it: every method trains, every checkpoint is evaluated,
 * Best-of-N is sampled, and results.json, results.md, frontier.vl.json and frontier.svg come out in
 * their formats. It checks the pipeline and the files, not who wins. A rerun reads everything back;
 * other options over the same --out are refused with exit code 2.
 */

import assert from "node:assert/strict";
import { bestOfNKl } from "../../src/experiment/best_of_n.ts";
import { COMPARISONS, METHOD_IDS } from "../../src/experiment/methods.ts";
import type { ExperimentResults } from "../../src/experiment/report.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

async function experiment(args: string[]) {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "src/cli/main.ts", "experiment", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: r.code, stdout: new TextDecoder().decode(r.stdout), stderr: new TextDecoder().decode(r.stderr) };
}

Deno.test("experiment --quick: the pipeline end to end and its files; a rerun resumes; other options are refused", async () => {
  const out = await Deno.makeTempDir({ prefix: "exo-experiment-" });
  try {
    const args = ["--quick", "--backend", "wasm", "--out", out, "--json"];
    const r = await experiment(args);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout) as ExperimentResults;
    assert.deepEqual(JSON.parse(await Deno.readTextFile(`${out}/results.json`)), res);
    assert.equal(res.backend, "wasm");
    assert.equal(res.oracle, "vader");
    assert.equal(res.budget.name, "quick");

    // Every method × β × seed ran and was evaluated at every checkpoint.
    assert.deepEqual(res.runs.map((x) => x.method).sort(), [...METHOD_IDS].sort());
    for (const run of res.runs) {
      assert.equal(run.train.steps, 4);
      assert.ok(Number.isFinite(run.train.finalLoss!));
      assert.deepEqual(run.checkpoints.map((c) => c.step), [2, 4]);
      for (const c of run.checkpoints) {
        assert.equal(c.samples, 16);
        assert.equal(c.prompts, 8);
        assert.ok(c.reward.mean >= -1 && c.reward.mean <= 1, `reward ${c.reward.mean}`);
        assert.ok(Number.isFinite(c.kl.mean) && c.kl.se >= 0 && c.reward.se >= 0);
        assert.ok(c.meanTokens >= 1 && c.meanTokens <= 24);
      }
      // The adapters along training were kept for the evaluation.
      for (const step of ["step-000002", "step-000004"]) {
        await Deno.stat(`${out}/${run.dir}/checkpoints/${step}/adapter_model.safetensors`);
      }
      const saved = JSON.parse(await Deno.readTextFile(`${out}/${run.dir}/eval/step-000004.json`));
      assert.equal(saved.samples.length, 16);
      const s = saved.samples[0];
      assert.ok(typeof s.text === "string" && Array.isArray(s.tokenIds) && s.tokenIds.length === s.tokens);
      assert.ok(s.logpPolicy <= 0 && s.logpSft <= 0);
    }
    // K = 2 groups are the K = 4 groups split: twice as many lines from the same 8 source groups.
    const lines = async (f: string) => (await Deno.readTextFile(`${out}/data/${f}`)).trim().split("\n").length;
    assert.equal(await lines("groups-k4.jsonl"), 8); // 4 updates × 2 groups of 4: one pass
    assert.equal(await lines("groups-k2.jsonl"), 16);

    // Best-of-N: the analytic KL and rewards that grow with N (E[max] is monotone in N for any data).
    assert.deepEqual(res.bestOfN.map((p) => p.n), [1, 2, 4, 8, 16]);
    for (const p of res.bestOfN) assert.equal(p.kl, bestOfNKl(p.n));
    for (let i = 1; i < 5; i++) assert.ok(res.bestOfN[i].reward.mean >= res.bestOfN[i - 1].reward.mean);
    assert.deepEqual(res.sft, res.bestOfN[0].reward);
    assert.equal(res.comparisons.length, COMPARISONS.length);
    for (const c of res.comparisons) assert.equal(typeof c.verdict, "string");

    const md = await Deno.readTextFile(`${out}/results.md`);
    assert.match(md, /^## Outcome \(quick: 1 seed, 6 runs, backend wasm\)/);
    assert.match(md, /\| comparison \| mean frontier gap \| KL range \(nats\) \| verdict \|/);
    assert.match(md, /\| Best-of-N \(SFT\) \|/);
    const spec = JSON.parse(await Deno.readTextFile(`${out}/frontier.vl.json`));
    assert.match(spec.$schema, /vega-lite\/v6/);
    const svg = await Deno.readTextFile(`${out}/frontier.svg`);
    assert.match(svg, /^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    for (const label of ["EXO-pref", "DPO-rw (K=2)", "Best-of-N (SFT)", "N=16", "mean oracle reward"]) {
      assert.ok(svg.includes(label.replace("(", "(")), `the figure lacks ${label}`);
    }

    // A rerun finds everything done: same results (but the clock).
    const again = await experiment(args);
    assert.equal(again.code, 0, again.stderr);
    const res2 = JSON.parse(again.stdout) as ExperimentResults;
    assert.deepEqual({ ...res2, finishedAt: 0, timings: 0 }, { ...res, finishedAt: 0, timings: 0 });
    assert.doesNotMatch(again.stderr, /trained \d+ updates/);

    // --partial trains nothing and reports the finished runs: all of them here, so no "partial" mark.
    const partial = await experiment([...args, "--partial"]);
    assert.equal(partial.code, 0, partial.stderr);
    const res3 = JSON.parse(partial.stdout) as ExperimentResults;
    assert.equal(res3.partial, undefined);
    assert.deepEqual(res3.runs, res.runs);

    const other = await experiment(["--quick", "--backend", "wasm", "--out", out, "--betas", "0.2"]);
    assert.equal(other.code, 2);
    assert.match(other.stderr, /holds an experiment made with other settings/);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
