/**
 * One multi-threaded wasm training trial, runnable under Deno, Bun and Node (no `Deno.*`): trains a
 * LoRA adapter for a few steps with `train()` (reference scoring, then the fused step) on the first
 * `--pairs` pairs of `data/pairs.jsonl`, with `--threads` wasm threads, and prints one line
 * `@@trial@@ {json}` with the per-step losses and the wasm thread count ORT really ran with.
 *
 * ORT's wasm thread count is fixed once it is loaded, so every thread count is its own process:
 * `bench/threads_stress.ts` runs this many times per runtime (a hang is a timeout there), and
 * `tests/runtime/wasm_threads_test.ts` runs it with 1 and 2 threads and compares the adapters.
 *
 * Usage: `<runtime> bench/threads_trial.ts --threads N --dir D [--pairs P] [--batch B] [--steps S]
 * [--model M]` (Node runs the esbuild bundle of this file, see threads_stress.ts).
 *
 * @module
 */

import process from "node:process";
import { localFiles } from "../src/io/files.ts";
import { configureRuntime, loadOrt, runtimeConfig } from "../src/runtime/ort.ts";
import { train } from "../src/train/trainer.ts";

/** The marker of the result line on stdout. */
export const TRIAL_PREFIX = "@@trial@@ ";

/** What one trial prints. */
export interface TrialResult {
  runtime: string;
  threads: number;
  /** `ort.env.wasm.numThreads` after the run: what ORT really used. */
  ortThreads: number;
  losses: number[];
  adapter: string;
  seconds: number;
}

function args(argv: string[]) {
  const get = (flag: string, fallback?: string) => {
    const i = argv.indexOf(flag);
    const v = i >= 0 ? argv[i + 1] : fallback;
    if (v === undefined) throw new RangeError(`missing ${flag}`);
    return v;
  };
  const int = (flag: string, fallback: number) => {
    const v = Number(get(flag, String(fallback)));
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${flag} must be a positive integer, got ${v}`);
    return v;
  };
  return {
    threads: int("--threads", 2),
    dir: get("--dir"),
    pairs: int("--pairs", 32),
    batch: int("--batch", 8),
    steps: int("--steps", 3),
    model: get("--model", "models/review-gpt2"),
  };
}

function runtimeName(): string {
  const g = globalThis as { Deno?: { version: { deno: string } }; Bun?: { version: string } };
  if (g.Deno) return `deno ${g.Deno.version.deno}`;
  if (g.Bun) return `bun ${g.Bun.version}`;
  return `node ${process.versions.node}`;
}

async function main(): Promise<void> {
  const o = args(process.argv.slice(2));
  configureRuntime({ wasmThreads: o.threads });
  const files = localFiles();
  const lines = (await files.readText("data/pairs.jsonl")).split("\n").filter((l) => l.trim());
  if (lines.length < o.pairs) throw new RangeError(`--pairs ${o.pairs}: data/pairs.jsonl has ${lines.length}`);
  await files.mkdir(o.dir);
  const data = `${o.dir}/pairs.jsonl`;
  await files.writeText(data, lines.slice(0, o.pairs).join("\n") + "\n");
  const out = `${o.dir}/run`;
  const t0 = performance.now();
  const summary = await train({
    model: o.model,
    data,
    out,
    backend: "wasm",
    batchSize: o.batch,
    maxSteps: o.steps,
    epochs: 1000, // maxSteps decides
    seed: 0,
    files,
  });
  const seconds = (performance.now() - t0) / 1000;
  const metrics = (await files.readText(`${out}/metrics.jsonl`)).split("\n").filter((l) => l.trim());
  const ort = await loadOrt("wasm");
  const result: TrialResult = {
    runtime: runtimeName(),
    threads: runtimeConfig().wasmThreads,
    ortThreads: ort.env.wasm.numThreads ?? 0,
    losses: metrics.map((l) => (JSON.parse(l) as { loss: number }).loss),
    adapter: summary.adapter,
    seconds,
  };
  console.log(TRIAL_PREFIX + JSON.stringify(result));
}

// Node 20 has no `import.meta.main`; there the bundle's own path on the command line says it.
const isMain = (import.meta as { main?: boolean }).main ??
  process.argv.some((a) => /threads_trial\.(ts|mjs)$/.test(a));
if (isMain) {
  try {
    await main();
    // ORT's worker threads can keep the process alive.
    process.exit(0);
  } catch (e) {
    console.error(e instanceof Error ? e.stack ?? e.message : String(e));
    process.exit(1);
  }
}
