/**
 * The workloads, each measured on one already-configured engine (backend + CPU threads). A
 * workload returns its runs; `bench/worker.ts` runs exactly one per process so that each gets
 * its own peak RSS and its own ORT thread count.
 *
 * @module
 */

import process from "node:process";
import { padPairs } from "../src/data/batching.ts";
import type { EncodedPair } from "../src/data/encode.ts";
import { Generator } from "../src/generate/generator.ts";
import { initLoraAdapter } from "../src/lora/adapter.ts";
import { createLoraConfig } from "../src/lora/config.ts";
import { type LoadedModel, loadModel, releaseWeights } from "../src/models/load.ts";
import { buildScoringGraph, Scorer, type ScoreSequence } from "../src/models/score.ts";
import { Graph } from "../src/onnx/graph.ts";
import * as op from "../src/onnx/ops.ts";
import { serializeModel } from "../src/onnx/serialize.ts";
import { adamw } from "../src/optim/adamw.ts";
import type { Engine, OrtTensor } from "../src/runtime/session.ts";
import { buildPreferenceGraph, INPUT } from "../src/train/preference_graph.ts";
import { compileStep } from "../src/train/step.ts";
import { StepRunner } from "../src/train/step_runner.ts";
import { shouldRecompute } from "../src/train/memory_plan.ts";
import { OrtTrainingRunner } from "../src/ort_training/mod.ts";
import { Rng } from "../src/util/rng.ts";
import { flopCounter } from "./flops.ts";
import { onlineUpdate } from "./online_workload.ts";
import { type PairIds, SHAPES, sharedInputs } from "./inputs.ts";
import type { MemoryProfile } from "./memory.ts";
import { train05b } from "./train_05b.ts";
import type { Run } from "./report.ts";

/** What every workload gets. */
export interface WorkloadContext {
  engine: Engine;
  threads: number;
  quick: boolean;
  /** Stop measuring after this many seconds of measured work (at least one measured repetition). */
  timeCapS: number;
  log: (line: string) => void;
  /** The memory profile: each workload runs its phases through `mem.phase()`. */
  mem: MemoryProfile;
  /** Train with the ort-training engine (ORT 1.19.2's TrainingSession) instead of the fused step. */
  ortTraining?: boolean;
}

/** Names of the workloads, in the order the suite runs them. */
export const WORKLOADS = [
  "matmul-peak",
  "train-tiny",
  "decode-tiny",
  "score-small",
  "decode-small",
  "train-small",
  "online-update",
  "train-0.5b",
] as const;
export type WorkloadName = typeof WORKLOADS[number];

/** Runs one workload. */
export async function runWorkload(name: WorkloadName, ctx: WorkloadContext): Promise<Run[]> {
  switch (name) {
    case "matmul-peak":
      return await ctx.mem.phase("matmuls", () => matmulPeak(ctx));
    case "train-tiny":
      return await train(ctx, "tiny");
    case "train-small":
      return await train(ctx, "small");
    case "train-0.5b":
      return await train05b(ctx);
    case "score-small":
      return await scoreSmall(ctx);
    case "decode-tiny":
      return await decode(ctx, "tiny");
    case "decode-small":
      return await decode(ctx, "small");
    case "online-update":
      return await onlineUpdate(ctx); // bench/online_workload.ts
  }
}

function runOf(ctx: WorkloadContext, workload: string) {
  return (metric: string, value: number | null, unit: string, note?: string): Run => ({
    workload,
    backend: ctx.ortTraining ? "ort-training" : ctx.engine.backend,
    threads: ctx.threads,
    metric,
    value,
    unit,
    ...(note ? { note } : {}),
  });
}

const now = () => performance.now();

// ------------------------------------------------------------------------------------- matmul

/**
 * The best fp32 GFLOP/s of single MatMuls `A[M, K] x W[K, N]` with W a constant (as model weights
 * are): square 512/1024/2048, the 124M model's fused QKV projection on a 4 x 128-token batch, and
 * its LM head. Each shape: one warm-up run, then repetitions for ~1.5 s (at least 2), best time
 * counted; the output download is included.
 */
async function matmulPeak(ctx: WorkloadContext): Promise<Run[]> {
  const run = runOf(ctx, "matmul-peak");
  const slow = ctx.engine.spec.device === "gpu";
  const shapes: [string, number, number, number][] = [
    ["512^3", 512, 512, 512],
    ["1024^3", 1024, 1024, 1024],
    ["qkv_512x768x2304", 512, 768, 2304],
  ];
  if (!ctx.quick) shapes.push(["2048^3", 2048, 2048, 2048]);
  if (!ctx.quick && !slow) shapes.push(["lmhead_512x768x50257", 512, 768, 50257]);
  const out: Run[] = [];
  let best = 0;
  const rng = new Rng(3);
  for (const [label, m, k, n] of shapes) {
    const rand = (len: number) => Float32Array.from({ length: len }, () => rng.next() - 0.5);
    // B is an initializer, as model weights are: ORT pre-packs constant B for its GEMM (a faster,
    // and on 2 threads the only parallel, path); A is fed.
    const g = new Graph("matmul");
    const a = g.input("a", "float32", [m, k]);
    const b = g.initializer("b", { dtype: "float32", shape: [k, n], data: rand(k * n) });
    g.output(op.matmul(a, b), "c");
    const session = await ctx.engine.createSession(serializeModel(g, { externalDataThreshold: 1 << 20 }));
    const feeds = { a: ctx.engine.tensor(rand(m * k), [m, k]) };
    const t0 = now();
    await session.run(feeds);
    const first = now() - t0;
    let bestMs = first, reps = 0;
    const budget = Math.min(1500, ctx.timeCapS * 1000);
    const start = now();
    while (reps < 2 || (now() - start < budget && reps < 50)) {
      const t = now();
      await session.run(feeds);
      bestMs = Math.min(bestMs, now() - t);
      reps++;
      if (slow && now() - start > budget) break;
    }
    await session.release();
    const gflops = (2 * m * n * k) / (bestMs / 1000) / 1e9;
    best = Math.max(best, gflops);
    out.push(run(`gflops_${label}`, gflops, "GFLOP/s"));
    ctx.log(`matmul ${label}: ${bestMs.toFixed(1)} ms, ${gflops.toFixed(1)} GFLOP/s`);
  }
  out.unshift(run("peak_gflops", best, "GFLOP/s"));
  return out;
}

// -------------------------------------------------------------------------------------- train

function toEncoded(batch: readonly PairIds[]): EncodedPair[] {
  return batch.map((p, i) => ({ promptIds: p.prompt, chosenIds: p.chosen, rejectedIds: p.rejected, line: i + 1 }));
}

function sequencesOf(batch: readonly PairIds[]): ScoreSequence[] {
  return [
    ...batch.map((p) => ({ promptIds: p.prompt, completionIds: p.chosen })),
    ...batch.map((p) => ({ promptIds: p.prompt, completionIds: p.rejected })),
  ];
}

/**
 * EXO-pref LoRA r=8 training steps as the trainer runs them: reference log-probs first (base
 * model, one Scorer run per batch, timed: `ref_ms`), the scorer released, then the fused step
 * (forward, loss, backward, clip 1, AdamW) on each batch. Warm-up steps are not measured.
 */
async function train(ctx: WorkloadContext, size: "tiny" | "small"): Promise<Run[]> {
  const inputs = await sharedInputs();
  return await trainWorkload(ctx, {
    workload: `train-${size}`,
    modelDir: size === "tiny" ? inputs.tinyModel : inputs.smallModel,
    batches: size === "tiny" ? inputs.tinyBatches : inputs.smallBatches,
    warmup: size === "tiny" ? 2 : 1,
    measured: size === "tiny" ? (ctx.quick ? 4 : 12) : (ctx.quick ? 1 : 3),
    loraR: size === "tiny" ? SHAPES.tinyLoraR : SHAPES.smallLoraR,
    targets: size === "tiny" ? undefined : ["c_attn"],
  });
}

/** A training workload: a model directory, its batches, and the LoRA to train. */
export interface TrainSpec {
  workload: string;
  modelDir: string;
  /** Batches of pairs, cycled through. */
  batches: readonly PairIds[][];
  /** Steps run before measuring (0: the first step is measured). */
  warmup: number;
  measured: number;
  loraR: number;
  /** LoRA target modules (default: every projection). */
  targets?: string[];
}

/**
 * Runs a training workload the way the trainer does (reference scoring, scorer released, step
 * session, steps), each part a phase of the memory profile.
 */
export async function trainWorkload(ctx: WorkloadContext, spec: TrainSpec): Promise<Run[]> {
  const { workload, warmup, measured } = spec;
  const run = runOf(ctx, workload);
  const model = await ctx.mem.phase("load", () => loadModel(spec.modelDir));
  const batches = Array.from({ length: warmup + measured }, (_, i) => spec.batches[i % spec.batches.length]);
  const maxLength = model.config.maxPositions;

  // Reference log-probs (what the trainer caches once per example).
  const tSetup = now();
  const refs: Float32Array[] = [];
  const refMs: number[] = [];
  await ctx.mem.phase("reference scoring", async () => {
    const scorer = await Scorer.create(model, { engine: ctx.engine });
    for (const b of batches) {
      const t = now();
      const lp = await scorer.score(sequencesOf(b), { batchSize: 2 * b.length });
      refMs.push(now() - t);
      refs.push(Float32Array.from(lp));
    }
    await scorer.release();
  });
  const scoreSetupS = (now() - tSetup) / 1000;

  // The graph, and above all the serialized step (a copy of every frozen weight), live only in
  // this phase, as in the trainer: they can be collected once ORT holds the weights.
  let compileS = 0, sessionS = 0, recompute = false;
  const { runner, flopsOf } = await ctx.mem.phase("step session", async () => {
    const t1 = now();
    const lora = createLoraConfig(model.config, { r: spec.loraR, targetModules: spec.targets });
    const adapter = initLoraAdapter(model.config, lora, new Rng(0));
    // The trainer's rule: layers recomputed when the largest batch's activations would be large.
    const longest = Math.max(
      ...batches.flat().map((p) => p.prompt.length + Math.max(p.chosen.length, p.rejected.length)),
    );
    recompute = shouldRecompute(model.config, 2 * Math.max(...batches.map((b) => b.length)), longest);
    const loss = { loss: "exo-pref", betaPi: 0.1, betaR: 0.1, eps: 1e-3, temperature: 1 } as const;
    // The ort-training engine emits its own training model from the same graph; this one then
    // serves only to count FLOPs.
    const pg = buildPreferenceGraph(model, lora, loss, { recompute });
    const compiled = ctx.ortTraining ? null : compileStep({
      graph: pg.graph,
      loss: pg.loss,
      params: pg.params,
      metrics: pg.metrics,
      optimizer: adamw({ weightDecay: 0 }),
      maxGradNorm: 1,
      serialize: { externalDataThreshold: 1 << 20 },
    });
    compileS = (now() - t1) / 1000;
    const params = new Map<string, Float32Array>();
    for (const [k, t] of adapter.tensors) params.set(k, t.data as Float32Array);
    const t2 = now();
    const runner = compiled
      ? await StepRunner.create(ctx.engine, compiled, params, { lr: 5e-4 })
      : await OrtTrainingRunner.create({
        model,
        adapter,
        loss,
        optimizer: adamw({ weightDecay: 0 }),
        lr: () => 5e-4,
        totalSteps: batches.length,
        gradAccum: 1,
        maxGradNorm: 1,
        recompute,
      });
    sessionS = (now() - t2) / 1000;
    // As the trainer does: ORT holds the weights now, so the JS copy goes (the graph keeps only
    // its shapes, for counting FLOPs).
    pg.graph.initializers.clear();
    releaseWeights(model);
    const flopsOf = flopCounter(pg.graph);
    return { runner, flopsOf };
  });
  ctx.log(`${workload}: graph ${compileS.toFixed(1)} s, session ${sessionS.toFixed(1)} s, recompute ${recompute}`);

  let tokens = 0, seconds = 0, flops = 0, refSeconds = 0, steps = 0, cpuSeconds = 0;
  const stepMs: number[] = [];
  try {
    for (let i = 0; i < batches.length; i++) {
      const padded = padPairs(toEncoded(batches[i]), { maxLength });
      const e = ctx.engine;
      const feeds: Record<string, OrtTensor> = {
        [INPUT.inputIds]: e.tensor(padded.inputIds as BigInt64Array, [padded.rows, padded.length]),
        [INPUT.attentionMask]: e.tensor(padded.attentionMask as BigInt64Array, [padded.rows, padded.length]),
        [INPUT.targets]: e.tensor(padded.targets as BigInt64Array, [padded.rows, padded.length]),
        [INPUT.completionMask]: e.tensor(padded.completionMask as Float32Array, [padded.rows, padded.length]),
        [INPUT.refLogps]: e.tensor(refs[i], [padded.rows]),
      };
      const c0 = process.cpuUsage();
      const t = now();
      const r = await ctx.mem.phase(i === 0 ? "first step" : "steady state", () => runner.run(feeds));
      const dt = now() - t;
      const cpu = process.cpuUsage(c0);
      if (!Number.isFinite(r.loss)) throw new Error(`non-finite loss ${r.loss} at step ${i}`);
      ctx.log(`${workload} step ${i}${i < warmup ? " (warm-up)" : ""}: ${dt.toFixed(0)} ms, loss ${r.loss.toFixed(5)}`);
      if (i < warmup) continue;
      const stepTokens = padded.rowLengths.reduce((a, b) => a + b, 0);
      tokens += stepTokens;
      seconds += dt / 1000;
      cpuSeconds += (cpu.user + cpu.system) / 1e6;
      refSeconds += refMs[i] / 1000;
      stepMs.push(dt);
      flops += flopsOf({ rows: padded.rows, seq: padded.length, positions: sumOf(padded.completionMask) });
      steps++;
      if (seconds > ctx.timeCapS) break;
    }
  } finally {
    await runner.release();
  }
  const note = steps < measured ? `time cap ${ctx.timeCapS} s: ${steps} of ${measured} steps measured` : undefined;
  return [
    run("tokens_per_s", tokens / seconds, "tokens/s", note),
    // Tokens per CPU-second of the process (all its threads): on a shared machine this moves less than
    // wall time with the other load; at 1 thread it is the throughput on a core of one's own.
    run("tokens_per_cpu_s", tokens / cpuSeconds, "tokens/s"),
    run("step_ms", mean(stepMs), "ms"),
    run("gflops", flops / seconds / 1e9, "GFLOP/s"),
    run("gflop_per_step", flops / steps / 1e9, "GFLOP"),
    run("ref_ms", (refSeconds / steps) * 1000, "ms"),
    run("tokens_per_s_with_ref", tokens / (seconds + refSeconds), "tokens/s"),
    run("setup_s", scoreSetupS + compileS + sessionS, "s"),
    run("steps_measured", steps, "steps"),
  ];
}

// -------------------------------------------------------------------------------------- score

/** Reference log-prob scoring of 4 x 128-token sequences on the 124M shape (one Scorer run each). */
async function scoreSmall(ctx: WorkloadContext): Promise<Run[]> {
  const run = runOf(ctx, "score-small");
  const inputs = await sharedInputs();
  const model = await ctx.mem.phase("load", () => loadModel(inputs.smallModel));
  const t0 = now();
  let flopsOf: (b: Record<string, number>) => number = () => 0;
  const scorer = await ctx.mem.phase("session", async () => {
    const s = await Scorer.create(model, { engine: ctx.engine });
    const graph = buildScoringGraph(model); // for counting FLOPs: its shapes only
    graph.initializers.clear();
    flopsOf = flopCounter(graph);
    // As the score CLI does: the session holds the weights, the JS copy goes.
    releaseWeights(model);
    return s;
  });
  const setupS = (now() - t0) / 1000;
  const reps = ctx.quick ? 1 : 3;
  let tokens = 0, seconds = 0, n = 0, cpuSeconds = 0;
  let flops = 0;
  try {
    for (let i = 0; i <= reps; i++) {
      const seqs = sequencesOf(inputs.smallBatches[i % inputs.smallBatches.length]).slice(0, SHAPES.scoreRows);
      const c0 = process.cpuUsage();
      const t = now();
      await ctx.mem.phase(i === 0 ? "first run" : "steady state", () => scorer.score(seqs, { batchSize: seqs.length }));
      const dt = now() - t;
      const cpu = process.cpuUsage(c0);
      ctx.log(`score-small run ${i}${i === 0 ? " (warm-up)" : ""}: ${dt.toFixed(0)} ms`);
      if (i === 0) continue;
      const len = Math.max(...seqs.map((s) => s.promptIds.length + s.completionIds.length));
      tokens += seqs.reduce((s, q) => s + q.promptIds.length + q.completionIds.length, 0);
      seconds += dt / 1000;
      cpuSeconds += (cpu.user + cpu.system) / 1e6;
      flops += flopsOf({
        batch: seqs.length,
        seq: len,
        positions: seqs.reduce((s, q) => s + q.completionIds.length, 0),
      });
      n++;
      if (seconds > ctx.timeCapS) break;
    }
  } finally {
    await scorer.release();
  }
  return [
    run("tokens_per_s", tokens / seconds, "tokens/s"),
    run("tokens_per_cpu_s", tokens / cpuSeconds, "tokens/s"),
    run("batch_ms", (seconds / n) * 1000, "ms"),
    run("gflops", flops / seconds / 1e9, "GFLOP/s"),
    run("setup_s", setupS, "s"),
  ];
}

// ------------------------------------------------------------------------------------- decode

/**
 * Greedy decoding with the KV cache (no EOS stop, so every row runs the full length), batch 1 and
 * 8 (8 distinct prompts of equal length, so no padding). A short warm-up generation per batch size
 * comes first. Prefill and decode tokens/s are the Generator's own timings.
 */
async function decode(ctx: WorkloadContext, size: "tiny" | "small"): Promise<Run[]> {
  const workload = `decode-${size}`;
  const run = runOf(ctx, workload);
  const inputs = await sharedInputs();
  const model: LoadedModel = await ctx.mem.phase(
    "load",
    () => loadModel(size === "tiny" ? inputs.tinyModel : inputs.smallModel),
  );
  const prompts = size === "tiny" ? inputs.tinyPrompts : inputs.smallPrompts;
  const newTokens = ctx.quick ? Math.min(8, inputs.decodeNewTokens[size]) : inputs.decodeNewTokens[size];
  const t0 = now();
  const gen = await ctx.mem.phase("session", () => Generator.create(model, { engine: ctx.engine }));
  const setupS = (now() - t0) / 1000;
  const out: Run[] = [run("setup_s", setupS, "s")];
  try {
    for (const b of SHAPES.decodeBatches) {
      const ps = prompts.slice(0, b);
      const opts = { temperature: 0, eosTokenIds: [] as number[], addSpecialTokens: false };
      const r = await ctx.mem.phase(`batch ${b}`, async () => {
        await gen.generate(ps, { ...opts, maxNewTokens: 2 });
        return await gen.generate(ps, { ...opts, maxNewTokens: newTokens });
      });
      const tm = r.timings;
      ctx.log(
        `${workload} b${b}: prefill ${tm.promptTokens} tokens ${
          tm.prefillMs.toFixed(0)
        } ms, decode ${tm.decodeSteps} steps ${tm.decodeMs.toFixed(0)} ms`,
      );
      out.push(
        run(`prefill_tokens_per_s_b${b}`, tm.prefillTokensPerSecond, "tokens/s"),
        run(`decode_tokens_per_s_b${b}`, tm.decodeTokensPerSecond, "tokens/s"),
      );
    }
  } finally {
    await gen.release();
  }
  return out;
}

function sumOf(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s;
}

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
}
