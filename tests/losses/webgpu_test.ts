/**
 * The loss graphs in float32 on WebGPU (lavapipe in CI): every node stays on the GPU, and a few
 * cases of losses and backward() gradients match the analytic float64 values to float32 accuracy.
 * Under CI=true a missing adapter fails the test; locally it is skipped with a note.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { probeWebGpu, resolveBackend } from "../../src/runtime/backend.ts";
import { dpoPref, dpoRw, exoPref, exoRw } from "../../src/losses/mod.ts";
import { flat, groupsArb, hyperArb, maxAbsDiff, pairsArb } from "./_cases.ts";
import { type LossFeeds, releaseSessions, runLosses } from "./_graph.ts";

const inCi = Deno.env.get("CI") === "true";
const probe = await probeWebGpu();
if (!probe.available && !inCi) console.warn(`Skipping the WebGPU loss tests: ${probe.reason}`);
const ignore = !probe.available && !inCi;
const SHAPE = { b: 2, k: 4, p: 3 };

/** Compares float32 graph outputs with the analytic losses of the float32-rounded inputs. */
function assertClose(out: Record<string, Float64Array>, f: LossFeeds, tol: number): void {
  const h = f.hyper;
  const zmax = Math.max(...[...f.u.flat(), ...f.uw, ...f.ul].map(Math.abs)) * h.betaPi +
    Math.max(...f.rewards.flat().map(Math.abs)) / h.betaR;
  const close = (name: string, got: ArrayLike<number>, want: ArrayLike<number>, scale = 1) => {
    const err = maxAbsDiff(got, want);
    const bound = tol * scale * (1 + zmax);
    assert.ok(Number.isFinite(err) && err <= bound, `${name}: max |webgpu - analytic| = ${err} > ${bound}`);
  };
  for (const [name, fn] of [["exo_pref", exoPref], ["dpo_pref", dpoPref]] as const) {
    const a = fn(f.uw, f.ul, h);
    close(`${name}.per_example`, out[`${name}.per_example`], a.perExample);
    close(`${name}.grad_chosen`, out[`${name}.grad_chosen`], a.gradChosen, h.betaPi);
    close(`${name}.grad_rejected`, out[`${name}.grad_rejected`], a.gradRejected, h.betaPi);
  }
  for (const [name, fn] of [["exo_rw", exoRw], ["dpo_rw", dpoRw]] as const) {
    const a = fn(f.u, f.rewards, h);
    close(`${name}.per_example`, out[`${name}.per_example`], a.perExample);
    close(`${name}.p_f`, out[`${name}.p_f`], flat(a.pF));
    close(`${name}.grad`, out[`${name}.grad`], flat(a.grad), h.betaPi);
  }
}

const f32 = (x: number) => Math.fround(x);
function round(f: LossFeeds): LossFeeds {
  return {
    u: f.u.map((r) => r.map(f32)),
    rewards: f.rewards.map((r) => r.map(f32)),
    uw: f.uw.map(f32),
    ul: f.ul.map(f32),
    hyper: { betaPi: f32(f.hyper.betaPi), betaR: f32(f.hyper.betaR), eps: f32(f.hyper.eps) },
  };
}

Deno.test({
  name: "webgpu: every node of the loss + gradient graph is placed on the WebGPU EP",
  ignore,
  async fn() {
    await resolveBackend("webgpu");
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("./_placement.ts", import.meta.url).pathname],
      stdout: "piped",
      stderr: "piped",
    });
    const { code, stderr } = await child.output();
    const log = new TextDecoder().decode(stderr);
    assert.equal(code, 0, log.slice(-2000));
    const placed = log.split("\n").filter((l) => l.includes("VerifyEachNodeIsAssignedToAnEp"));
    assert.ok(
      placed.some((l) => l.includes("All nodes placed on [WebGpuExecutionProvider]")),
      `nodes left the GPU:\n${placed.join("\n")}`,
    );
  },
});

Deno.test({
  name: "webgpu (float32): losses and backward() gradients match the analytic ones, extremes stay finite",
  ignore,
  async fn() {
    await resolveBackend("webgpu");
    await fc.assert(
      fc.asyncProperty(
        groupsArb({ bMin: 2, bMax: 2, kMin: 4, kMax: 4, range: 10 }),
        pairsArb({ bMax: 3, range: 10 }).filter((p) => p.uw.length === 3),
        hyperArb,
        async (c, p, h) => {
          const f = round({
            u: c.u,
            rewards: c.rewards,
            uw: p.uw,
            ul: p.ul,
            hyper: { ...h, betaPi: Math.min(h.betaPi, 2) },
          });
          assertClose(await runLosses("webgpu", "float32", f, SHAPE), f, 2e-6);
        },
      ),
      { numRuns: 8 },
    );
    // Extremes: |β_π u| = 1e4, ε = 1e-12, tied and far-apart rewards.
    for (const [z, eps, tied] of [[1e4, 1e-12, true], [-1e4, 1e-12, false], [0, 1e-12, true]] as const) {
      const f = round({
        u: [[z, -z, 0, z], [0, 0, 0, 0]],
        rewards: tied ? [[1, 1, 1, 1], [0, 0, 0, 0]] : [[1e3, -1e3, 0, 0], [5, 0, 0, 5]],
        uw: [z, -z, 0],
        ul: [-z, z, 0],
        hyper: { betaPi: 1, betaR: 0.01, eps },
      });
      const out = await runLosses("webgpu", "float32", f, SHAPE);
      for (const [name, v] of Object.entries(out)) assert.ok(v.every(Number.isFinite), `${name}: ${v}`);
      assertClose(out, f, 2e-6);
    }
    await releaseSessions();
  },
});
