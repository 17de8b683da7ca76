/**
 * `deno task bench:compare`: ours against PyTorch, workload by workload, at the same thread count.
 *
 * Reads `bench/results/latest.json` (ours) and `bench/results/torch-latest.json`; with `--run`
 * (or when either file is missing) it first runs both suites (`--quick` and `--only` are passed
 * on). Prints, per (workload, metric, threads), our value on each CPU backend (wasm, native-cpu),
 * PyTorch's at the same thread count, and ours / PyTorch; GPU rows (webgpu, native-webgpu) are set
 * against PyTorch at the most threads measured. For train workloads it also
 * prints PyTorch's GFLOP/s on our FLOP count (the same products), so both engines' share of their
 * own matmul peak can be read side by side.
 *
 * @module
 */

import { fmt, type Results, type Run, table } from "./report.ts";

const HIGHER_IS_BETTER = /per_s|per_cpu_s|gflops|pct_of_peak/;

async function readResults(path: string): Promise<Results | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as Results;
  } catch {
    return null;
  }
}

async function run(cmd: string, args: string[], root: string): Promise<void> {
  const st = await new Deno.Command(cmd, { args, cwd: root, stdout: "inherit", stderr: "inherit" }).spawn().status;
  if (!st.success) throw new Error(`${cmd} ${args.join(" ")} failed (exit ${st.code})`);
}

/** Debian's interpreter (a pyenv/venv python3 first on PATH would not see python3-torch). */
function python(): string {
  try {
    Deno.statSync("/usr/bin/python3");
    return "/usr/bin/python3";
  } catch {
    return "python3";
  }
}

/** The comparison rows (exported for reuse in reports). */
export function compareRows(ours: readonly Run[], torch: readonly Run[]): string[][] {
  const key = (r: Run) => `${r.workload}|${r.metric}|${r.threads}`;
  const torchBy = new Map(torch.filter((r) => r.value !== null).map((r) => [key(r), r]));
  const maxTorchThreads = Math.max(1, ...torch.map((r) => r.threads));
  const rows: string[][] = [];
  const seen = new Set<string>();
  const stepGflop = new Map<string, number>();
  for (const r of ours) {
    if (r.metric === "gflop_per_step" && r.backend === "wasm" && r.value) stepGflop.set(r.workload, r.value);
  }
  const sorted = [...ours].filter((r) => r.value !== null && r.metric !== "status").sort((a, b) =>
    a.workload.localeCompare(b.workload) || a.metric.localeCompare(b.metric) || a.backend.localeCompare(b.backend) ||
    a.threads - b.threads
  );
  for (const r of sorted) {
    const gpu = r.backend === "webgpu" || r.backend === "native-webgpu";
    const threads = gpu ? maxTorchThreads : r.threads;
    const t = torchBy.get(`${r.workload}|${r.metric}|${threads}`);
    if (!t || t.value === null) continue;
    const ratio = r.value! / t.value;
    const better = HIGHER_IS_BETTER.test(r.metric) ? ratio >= 1 : ratio <= 1;
    rows.push([
      r.workload,
      r.metric,
      r.unit,
      `${r.backend}/${r.threads}t vs torch/${threads}t`,
      fmt(r.value),
      fmt(t.value),
      `${ratio.toFixed(2)}x${better ? "" : " *"}`,
    ]);
    seen.add(key(t));
  }
  // PyTorch's GFLOP/s on our FLOP count, for the train workloads.
  for (const t of torch) {
    if (!t.workload.startsWith("train-") || t.metric !== "step_ms" || t.value === null) continue;
    const gflop = stepGflop.get(t.workload);
    if (!gflop) continue;
    const g = gflop / (t.value / 1000);
    const peak = torch.find((p) =>
      p.workload === "matmul-peak" && p.metric === "peak_gflops" && p.threads === t.threads
    )?.value;
    rows.push([
      t.workload,
      "torch gflops (our FLOP count)",
      "GFLOP/s",
      `torch/${t.threads}t`,
      "",
      fmt(g),
      peak ? `${fmt((100 * g) / peak)}% of its peak` : "",
    ]);
  }
  return rows;
}

async function main(): Promise<void> {
  const args = Deno.args;
  const root = new URL("..", import.meta.url).pathname;
  const dir = `${root}bench/results`;
  const pass: string[] = [];
  if (args.includes("--quick")) pass.push("--quick");
  const oi = args.indexOf("--only");
  if (oi >= 0) pass.push("--only", args[oi + 1]);
  let ours = await readResults(`${dir}/latest.json`);
  let torch = await readResults(`${dir}/torch-latest.json`);
  if (args.includes("--run") || !ours) {
    await run(Deno.execPath(), ["run", "-A", "bench/main.ts", ...pass], root);
    ours = await readResults(`${dir}/latest.json`);
  }
  if (args.includes("--run") || !torch) {
    await run(python(), ["bench/torch/bench.py", ...pass], root);
    torch = await readResults(`${dir}/torch-latest.json`);
  }
  if (!ours || !torch) throw new Error("No results to compare: run `deno task bench` and bench/torch/bench.py first");
  console.log(`ours:    ${ours.date}  ${JSON.stringify(ours.options)}`);
  console.log(`pytorch: ${torch.date}  torch ${(torch.machine as { torch?: string }).torch}`);
  console.log(`machine: ${ours.machine.cpu}, ${ours.machine.cores} cores, ${ours.machine.memoryGiB} GiB\n`);
  console.log(table(
    ["workload", "metric", "unit", "configs", "ours", "pytorch", "ours/pytorch"],
    compareRows(ours.runs, torch.runs),
  ));
  console.log("\n* = worse than PyTorch (lower throughput, or more time / memory)");
}

if (import.meta.main) await main();
