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
import { type HyperMode, type LossFeeds, releaseSessions, runLosses } from "./_graph.ts";

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
    // Two sessions: β and ε as inputs, and as constants (as training builds the graph). ORT logs a
    // "Node placements" header per session, then one line per EP that got nodes.
    const placed = log.split("\n").filter((l) => l.includes("VerifyEachNodeIsAssignedToAnEp"));
    assert.equal(placed.filter((l) => l.includes("Node placements")).length, 2, log.slice(-2000));
    assert.equal(
      placed.filter((l) => l.includes("All nodes placed on [WebGpuExecutionProvider]")).length,
      2,
      `nodes left the GPU:\n${placed.join("\n")}`,
    );
  },
});

for (const mode of ["inputs", "constants"] as HyperMode[]) {
  Deno.test({
    name: `webgpu (float32, β and ε as ${mode}): losses and gradients match the analytic ones, extremes included`,
    ignore,
    fn: () => checkWebGpu(mode),
  });
}

/**
 * Random cases (a few: each constants case is a session of its own), then the extremes: |β_π u| =
 * 1e4, ε = 1e-12, tied and far-apart rewards.
 */
async function checkWebGpu(mode: HyperMode): Promise<void> {
  await resolveBackend("webgpu");
  const hyper = mode === "inputs" ? hyperArb : fc.constantFrom({ betaPi: 0.1, betaR: 0.1, eps: 1e-3 }, {
    betaPi: 2,
    betaR: 0.05,
    eps: 1e-9,
  });
  await fc.assert(
    fc.asyncProperty(
      groupsArb({ bMin: 2, bMax: 2, kMin: 4, kMax: 4, range: 10 }),
      pairsArb({ bMax: 3, range: 10 }).filter((p) => p.uw.length === 3),
      hyper,
      async (c, p, h) => {
        const f = round({
          u: c.u,
          rewards: c.rewards,
          uw: p.uw,
          ul: p.ul,
          hyper: { ...h, betaPi: Math.min(h.betaPi, 2) },
        });
        assertClose(await runLosses("webgpu", "float32", f, SHAPE, mode), f, 2e-6);
      },
    ),
    { numRuns: mode === "inputs" ? 8 : 4 },
  );
  let worst = 0;
  for (
    const [z, eps, tied] of [[1e4, 1e-12, true], [-1e4, 1e-12, false], [0, 1e-12, true], [30, 1e-12, false]] as const
  ) {
    const f = round({
      u: [[z, -z, 0, z], [0, 0, 0, 0]],
      rewards: tied ? [[1, 1, 1, 1], [0, 0, 0, 0]] : [[1e3, -1e3, 0, 0], [5, 0, 0, 5]],
      uw: [z, -z, 0],
      ul: [-z, z, 0],
      hyper: { betaPi: 1, betaR: 0.01, eps },
    });
    const out = await runLosses("webgpu", "float32", f, SHAPE, mode);
    for (const [name, v] of Object.entries(out)) assert.ok(v.length > 0 && v.every(Number.isFinite), `${name}: ${v}`);
    assertClose(out, f, 2e-6);
    worst = Math.max(worst, assertSaturatedGradients(out, f));
  }
  console.log(`  extremes: worst gradient error ${worst.toExponential(2)} of β/n (1 + target scale)`);
  await releaseSessions();
}

/**
 * The gradients at the extremes, held to a bound that does not grow with |β u| (assertClose's does,
 * as the float32 rounding of z = β u does move unsaturated gradients): β/n times 1 + the target's
 * log-probability scale (|log ε| for pairs, the spread of r / β_r for groups), which is what EXO's
 * gradient scales with. Returns the worst error in units of that bound.
 */
function assertSaturatedGradients(out: Record<string, Float64Array>, f: LossFeeds): number {
  const h = f.hyper, n = f.uw.length, b = f.u.length;
  const pair = (h.betaPi / n) * (1 + Math.abs(Math.log(h.eps)));
  const r = f.rewards.flat().map((x) => x / h.betaR);
  const group = (h.betaPi / b) * (1 + Math.max(...r) - Math.min(...r));
  let worst = 0;
  const check = (name: string, got: Float64Array, want: ArrayLike<number>, scale: number) => {
    const err = maxAbsDiff(got, want) / scale;
    worst = Math.max(worst, err);
    assert.ok(err <= TOL_SATURATED, `${name}: error ${err} of its scale > ${TOL_SATURATED}`);
  };
  for (const [name, fn] of [["exo_pref", exoPref], ["dpo_pref", dpoPref]] as const) {
    const a = fn(f.uw, f.ul, h);
    check(`${name}.grad_chosen`, out[`${name}.grad_chosen`], a.gradChosen, pair);
    check(`${name}.grad_rejected`, out[`${name}.grad_rejected`], a.gradRejected, pair);
  }
  for (const [name, fn] of [["exo_rw", exoRw], ["dpo_rw", dpoRw]] as const) {
    check(`${name}.grad`, out[`${name}.grad`], flat(fn(f.u, f.rewards, h).grad), group);
  }
  return worst;
}

/** Saturated float32 gradient error, in units of β/n (1 + target scale): 10x the worst measured (3.3e-9). */
const TOL_SATURATED = 4e-8;
