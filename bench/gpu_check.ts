/**
 * The GPU check (`bench/gpu-check.sh` runs it on a Linux machine with a GPU): one JSON file that
 * says whether both GPU paths work and how fast they are, within a fixed time budget.
 *
 * 1. `doctor`: every backend probed, with why `auto` takes or passes over each one.
 * 2. The golden SGD step (one step of SGD at lr 1 equals minus PyTorch's gradient, as in
 *    tests/train/trainer_golden_test.ts) on `native-webgpu` and on `webgpu` (Deno's WebGPU), every
 *    loss and both architectures.
 * 3. `bench/main.ts` on train-small, score-small and decode-small on both GPU paths, then the
 *    baselines the targets are stated against: train-small on wasm at 1 thread, and native-cpu on
 *    every core.
 *
 * Every step is recorded as it ends (`gpu-check.json` is rewritten atomically), so a run cut short
 * still leaves what it measured; a backend that is absent or fails is recorded with the reason and
 * the check goes on. Exit code 0 when it ran to the end (whatever it found), 1 otherwise.
 *
 * Usage: `deno run -A bench/gpu_check.ts --out DIR [--bench-dir DIR] [--budget-s 540] [--quick]`; the
 * bench suites write their own result files under `--bench-dir` (default `DIR/bench`), and everything
 * they measured is also in `gpu-check.json` (the device tool brings back at most 8 files).
 *
 * @module
 */

import { doctor } from "../src/cli/doctor.ts";
import type { BackendName } from "../src/runtime/ort.ts";
import { resolveBackend } from "../src/runtime/backend.ts";
import { train } from "../src/train/trainer.ts";
import type { LossKind } from "../src/train/preference_graph.ts";
import { adapterAt, checkMinusGradient, FX, goldenLoss } from "../tests/train/_trainer_support.ts";
import type { Results, Run } from "./report.ts";
import { writeAtomic } from "./inputs.ts";

/** Every loss once, both architectures (the WebGPU cases of the golden test). */
const GOLDEN_CASES: [string, LossKind][] = [
  ["tiny-llama", "exo-pref"],
  ["tiny-llama", "dpo-rw"],
  ["tiny-gpt2", "dpo-pref"],
  ["tiny-gpt2", "exo-rw"],
];
/** The golden test's tolerance (10x the worst measured, 2.0e-6): the update's worst element error relative to max |grad|. */
const GOLDEN_TOL = 2e-5;
const GPU_BACKENDS: BackendName[] = ["native-webgpu", "webgpu"];

interface GoldenResult {
  backend: BackendName;
  model?: string;
  loss?: LossKind;
  ok: boolean;
  maxRelError?: number;
  seconds?: number;
  error?: string;
}

interface Report {
  started: string;
  finished: string | null;
  budgetS: number;
  seconds: number;
  environment: Record<string, string | undefined>;
  doctor: unknown;
  golden: GoldenResult[];
  bench: { label: string; args: string[]; seconds: number; exit: number | null; runs: Run[]; notes: string[] }[];
  summary: Record<string, unknown>;
  errors: string[];
}

function arg(name: string): string | undefined {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

const out = arg("--out") ?? "gpu-check-results";
const benchDir = arg("--bench-dir") ?? `${out}/bench`;
const budgetS = Number(arg("--budget-s") ?? 540);
const quick = Deno.args.includes("--quick");
const root = new URL("..", import.meta.url).pathname;
const t0 = performance.now();
const elapsed = () => (performance.now() - t0) / 1000;
const left = () => budgetS - elapsed();

const report: Report = {
  started: new Date().toISOString(),
  finished: null,
  budgetS,
  seconds: 0,
  environment: {
    deno: Deno.version.deno,
    os: `${Deno.build.os} ${Deno.build.arch} ${Deno.osRelease()}`,
    cores: String(navigator.hardwareConcurrency),
    VK_DRIVER_FILES: Deno.env.get("VK_DRIVER_FILES"),
    LD_LIBRARY_PATH: Deno.env.get("LD_LIBRARY_PATH"),
  },
  doctor: null,
  golden: [],
  bench: [],
  summary: {},
  errors: [],
};

async function save(): Promise<void> {
  report.seconds = elapsed();
  await writeAtomic(`${out}/gpu-check.json`, new TextEncoder().encode(JSON.stringify(report, null, 2) + "\n"));
}

function log(line: string): void {
  console.error(`[gpu-check ${elapsed().toFixed(0)}s] ${line}`);
}

/** One golden step on `backend`: train one SGD step, compare with −grad. */
async function goldenStep(backend: BackendName, model: string, loss: LossKind): Promise<GoldenResult> {
  const dir = await Deno.makeTempDir({ prefix: "gpu-golden-" });
  const t = performance.now();
  try {
    const rw = loss.endsWith("-rw");
    const s = await train({
      model: `${FX}/${model}`,
      data: `${FX}/${rw ? "rewards" : "pairs"}.jsonl`,
      out: dir,
      loss,
      optimizer: "sgd",
      lr: 1,
      maxGradNorm: 0,
      batchSize: rw ? 2 : 3,
      schedule: "constant",
      initAdapter: `${FX}/${model}/adapter`,
      backend,
    });
    if (s.backend !== backend) throw new Error(`ran on ${s.backend}`);
    const g = await goldenLoss(model, loss);
    const worst = checkMinusGradient(
      await adapterAt(`${FX}/${model}/adapter`),
      await adapterAt(dir),
      g.grad,
      GOLDEN_TOL,
      `${model} ${loss}`,
    );
    return { backend, model, loss, ok: true, maxRelError: worst, seconds: (performance.now() - t) / 1000 };
  } catch (e) {
    return { backend, model, loss, ok: false, error: String((e as Error).message ?? e).slice(0, 600) };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Runs bench/main.ts into its own results directory and records what it wrote. */
async function bench(label: string, args: string[]): Promise<void> {
  const dir = `${benchDir}/${label}`;
  await Deno.mkdir(dir, { recursive: true });
  const cap = Math.max(30, Math.floor(left() - 20));
  const full = ["run", "-A", "bench/main.ts", ...args, "--max-timeout", String(cap), "--out", dir];
  log(`bench ${label}: ${full.slice(2).join(" ")}`);
  const t = performance.now();
  const child = new Deno.Command(Deno.execPath(), { args: full, cwd: root, stdout: "piped", stderr: "inherit" })
    .spawn();
  // The workers have their own timeouts; this one catches the suite itself (e.g. preparing the inputs).
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, Math.max(10, left() - 10) * 1000);
  const [status, stdout] = await Promise.all([child.status, new Response(child.stdout).text()]);
  clearTimeout(timer);
  await Deno.writeTextFile(`${dir}/table.txt`, stdout);
  console.error(stdout); // the table, into the log
  let runs: Run[] = [], notes: string[] = [];
  try {
    const r = JSON.parse(await Deno.readTextFile(`${dir}/latest.json`)) as Results;
    runs = r.runs;
    notes = r.notes;
  } catch (e) {
    report.errors.push(`bench ${label}: no results (${(e as Error).message})`);
  }
  report.bench.push({ label, args, seconds: (performance.now() - t) / 1000, exit: status.code, runs, notes });
  await save();
}

function value(workload: string, backend: string, metric: string, threads?: number): number | null {
  for (const b of report.bench) {
    for (const r of b.runs) {
      if (
        r.workload === workload && r.backend === backend && r.metric === metric &&
        (threads === undefined || r.threads === threads)
      ) {
        return r.value;
      }
    }
  }
  return null;
}

async function main(): Promise<number> {
  await Deno.mkdir(out, { recursive: true });
  await save();

  log("doctor");
  try {
    report.doctor = await doctor("auto");
  } catch (e) {
    report.errors.push(`doctor: ${(e as Error).message}`);
  }
  await save();

  for (const backend of GPU_BACKENDS) {
    try {
      await resolveBackend(backend);
    } catch (e) {
      log(`golden ${backend}: unavailable`);
      report.golden.push({ backend, ok: false, error: `unavailable: ${(e as Error).message}` });
      await save();
      continue;
    }
    for (const [model, loss] of GOLDEN_CASES) {
      if (left() < 240) {
        report.errors.push(`golden ${backend} ${model} ${loss}: skipped, the time budget is spent`);
        continue;
      }
      const r = await goldenStep(backend, model, loss);
      log(
        `golden ${backend} ${model} ${loss}: ${r.ok ? `ok, ${r.maxRelError!.toExponential(2)}` : `FAILED ${r.error}`}`,
      );
      report.golden.push(r);
      await save();
    }
  }

  const q = quick ? ["--quick"] : [];
  const gpuOnly = [
    "--only",
    "train-small,score-small,decode-small",
    "--backends",
    "native-webgpu,webgpu",
    "--threads",
    "1",
  ];
  await bench("gpu", [...gpuOnly, ...q]);
  // The targets' baselines, on this machine's CPU: wasm at 1 thread, native-cpu on every core.
  if (left() > 90) {
    await bench("wasm-1t", ["--only", "train-small", "--backends", "wasm", "--threads", "1", "--quick"]);
  }
  if (left() > 90) {
    const cores = String(navigator.hardwareConcurrency);
    await bench("native-cpu", [
      "--only",
      "train-small,score-small",
      "--backends",
      "native-cpu",
      "--threads",
      cores,
      "--quick",
    ]);
  }

  const wasm = value("train-small", "wasm", "tokens_per_s", 1);
  for (const b of GPU_BACKENDS) {
    const v = value("train-small", b, "tokens_per_s");
    report.summary[`train-small ${b} tokens/s`] = v;
    report.summary[`train-small ${b} / wasm-1t`] = v && wasm ? v / wasm : null;
    report.summary[`score-small ${b} tokens/s`] = value("score-small", b, "tokens_per_s");
    report.summary[`decode-small ${b} decode tokens/s b1`] = value("decode-small", b, "decode_tokens_per_s_b1");
    report.summary[`golden ${b}`] = report.golden.filter((g) => g.backend === b).every((g) => g.ok) &&
      report.golden.some((g) => g.backend === b);
  }
  report.summary["train-small wasm-1t tokens/s"] = wasm;
  report.summary["target: train-small on a GPU >= 20x wasm at 1 thread"] = Math.max(
    ...GPU_BACKENDS.map((b) => (report.summary[`train-small ${b} / wasm-1t`] as number | null) ?? 0),
  ) >= 20;
  report.finished = new Date().toISOString();
  await save();
  log(`done in ${elapsed().toFixed(0)} s: ${out}/gpu-check.json`);
  console.log(JSON.stringify(report.summary, null, 2));
  return 0;
}

if (import.meta.main) {
  let code = 1;
  try {
    code = await main();
  } catch (e) {
    report.errors.push(`gpu-check: ${(e as Error).stack ?? e}`);
    await save().catch(() => {});
  }
  Deno.exit(code);
}
