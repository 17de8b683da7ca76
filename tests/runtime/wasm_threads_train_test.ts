// Training with 2 wasm threads gives the 1-thread results, and starts (never hangs) in Deno, Bun
// and Node. ORT's thread count is fixed per process, so every run is a subprocess of
// bench/threads_trial.ts (the stress probe's trial, smaller here).

import assert from "node:assert/strict";
import * as esbuild from "esbuild";
import { localFiles } from "../../src/io/files.ts";
import { readAdapter } from "../../src/lora/adapter.ts";
import { TRIAL_PREFIX, type TrialResult } from "../../bench/threads_trial.ts";

const CI = Deno.env.get("CI") === "true";
const ROOT = new URL("../../", import.meta.url).pathname;
/** 16 pairs of the review model, 2 fused EXO steps of 8 pairs: ~20 s per run on 2 cores. */
const TRIAL = ["--pairs", "16", "--batch", "8", "--steps", "2"];
/** A run takes ~20 s alone on the 2-core CI machine; a hang never ends, so a timeout tells them apart. */
const TIMEOUT_MS = 240_000;

/**
 * Measured: 1, 2, 3 and 4 threads give bitwise-equal losses and adapters (MLAS splits a GEMM's
 * outputs across threads, never one sum). 1e-6 still admits a reduction split by thread count
 * (~100 fp32 ulps at the adapter's 1e-2..1e-1 scale), while a threading bug (a partition lost or
 * done twice) moves a loss by far more and the weights by about the learning rate, 5e-4.
 */
const TOL = 1e-6;

async function trial(cmd: string, args: string[], threads: number, dir: string): Promise<TrialResult> {
  const child = new Deno.Command(cmd, {
    args: [...args, "--threads", String(threads), "--dir", dir, ...TRIAL],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    child.kill("SIGKILL");
  }, TIMEOUT_MS);
  const out = await child.output();
  clearTimeout(timer);
  const what = `${cmd.split("/").pop()} with ${threads} wasm thread(s)`;
  assert.ok(!hung, `${what} hung: killed after ${TIMEOUT_MS / 1000} s`);
  const line = new TextDecoder().decode(out.stdout).split("\n").find((l) => l.startsWith(TRIAL_PREFIX));
  assert.ok(out.success && line, `${what} failed: ${new TextDecoder().decode(out.stderr).slice(-1500)}`);
  const r = JSON.parse(line.slice(TRIAL_PREFIX.length)) as TrialResult;
  assert.equal(r.ortThreads, threads, `${what}: ORT ran ${r.ortThreads} thread(s)`);
  return r;
}

async function assertSameTraining(one: TrialResult, other: TrialResult): Promise<void> {
  const label = `${other.runtime}, ${other.threads} threads`;
  assert.equal(other.losses.length, one.losses.length);
  one.losses.forEach((l, i) => {
    assert.ok(Math.abs(l - other.losses[i]) <= TOL, `${label}: step ${i} loss ${other.losses[i]} vs ${l}`);
  });
  const [a, b] = await Promise.all([one.adapter, other.adapter].map((d) => readAdapter(d, localFiles())));
  assert.deepEqual([...b.tensors.keys()].sort(), [...a.tensors.keys()].sort());
  let worst = 0;
  for (const [name, t] of a.tensors) {
    const x = t.data as Float32Array, y = b.tensors.get(name)!.data as Float32Array;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
  }
  assert.ok(worst <= TOL, `${label}: adapter differs from 1 thread by up to ${worst}`);
}

function which(cmd: string): string | null {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(`${dir}/${cmd}`).isFile) return `${dir}/${cmd}`;
    } catch { /* not here */ }
  }
  return null;
}

Deno.test("training with 2 wasm threads matches 1 thread, in Deno, Bun and Node", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "exo-threads-test-" });
  try {
    const deno = [Deno.execPath(), ["run", "-A", "bench/threads_trial.ts"]] as const;
    // In parallel: the 1-thread reference and the 2-thread run are independent processes.
    const [one, two] = await Promise.all([
      trial(deno[0], [...deno[1]], 1, `${dir}/deno-1`),
      trial(deno[0], [...deno[1]], 2, `${dir}/deno-2`),
    ]);
    assert.ok(one.losses.every(Number.isFinite) && one.losses.length === 2, JSON.stringify(one.losses));
    await t.step("deno", () => assertSameTraining(one, two));

    await t.step("bun and node", async () => {
      const node = which("node");
      if (!node) {
        assert.ok(!CI, "CI must have node");
        console.warn("note: node not found; the Node run is skipped");
      }
      // Node 20 cannot run TypeScript: it runs an esbuild bundle of the trial (packages external).
      const bundle = `${ROOT}.cache/threads/threads_trial.mjs`;
      if (node) {
        await esbuild.build({
          entryPoints: [`${ROOT}bench/threads_trial.ts`],
          bundle: true,
          format: "esm",
          platform: "node",
          target: "node20",
          packages: "external",
          outfile: bundle,
          logLevel: "warning",
        });
        await esbuild.stop();
      }
      const runs = await Promise.all([
        trial(`${ROOT}node_modules/.bin/bun`, ["bench/threads_trial.ts"], 2, `${dir}/bun-2`),
        ...(node ? [trial(node, [bundle], 2, `${dir}/node-2`)] : []),
      ]);
      for (const r of runs) await assertSameTraining(one, r);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
