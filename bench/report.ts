/**
 * The benchmark's result format, the machine description, the table printer and the result files.
 *
 * Results are one JSON object: `machine` and `runs`, each run one number
 * `{ workload, backend, threads, metric, value, unit }`. A configuration that failed, hung or was
 * skipped is a run with `value: null` and a `note` saying why, so a missing number is never silent.
 *
 * @module
 */

import { writeAtomic } from "./inputs.ts";

/** One measured number. */
export interface Run {
  workload: string;
  backend: string;
  threads: number;
  metric: string;
  value: number | null;
  unit: string;
  /** Why `value` is null (skipped, timed out, failed), or a remark on how it was measured. */
  note?: string;
}

/** The whole result file. */
export interface Results {
  /** Which engine produced it: "exo-tune" (ours) or "pytorch". */
  engine: string;
  date: string;
  machine: Record<string, unknown>;
  options: Record<string, unknown>;
  runs: Run[];
  /** Free-form remarks (engines not available, configurations skipped and why). */
  notes: string[];
}

/** CPU, memory, OS, runtime versions and the WebGPU adapter. */
export async function describeMachine(): Promise<Record<string, unknown>> {
  let cpu = "unknown";
  let flags: string[] = [];
  try {
    const info = await Deno.readTextFile("/proc/cpuinfo");
    cpu = /model name\s*:\s*(.+)/.exec(info)?.[1]?.trim() ?? cpu;
    const f = /flags\s*:\s*(.+)/.exec(info)?.[1]?.split(/\s+/) ?? [];
    flags = f.filter((x) => /^(avx|avx2|avx512f|fma|sse4_2|amx\w*)$/.test(x));
  } catch { /* not Linux */ }
  let os = `${Deno.build.os} ${Deno.osRelease()}`;
  try {
    const rel = await Deno.readTextFile("/etc/os-release");
    const pretty = /PRETTY_NAME="?([^"\n]+)"?/.exec(rel)?.[1];
    if (pretty) os = `${pretty} (kernel ${Deno.osRelease()})`;
  } catch { /* not Linux */ }
  const mem = Deno.systemMemoryInfo();
  const versionOf = async (pkg: string) => {
    try {
      return JSON.parse(await Deno.readTextFile(`node_modules/${pkg}/package.json`)).version as string;
    } catch {
      return "not installed";
    }
  };
  const ort = await versionOf("onnxruntime-web");
  const ortNode = await versionOf("onnxruntime-node");
  const { probeWebGpu } = await import("../src/runtime/backend.ts");
  const gpu = await probeWebGpu();
  return {
    cpu,
    cpuFlags: flags,
    cores: navigator.hardwareConcurrency,
    memoryGiB: Number((mem.total / 2 ** 30).toFixed(1)),
    os,
    arch: Deno.build.arch,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    onnxruntimeWeb: ort,
    onnxruntimeNode: ortNode,
    webgpu: gpu.available
      ? {
        description: gpu.adapter?.description || gpu.adapter?.vendor,
        architecture: gpu.adapter?.architecture,
        isFallbackAdapter: gpu.adapter?.isFallbackAdapter,
        reason: gpu.reason,
      }
      : { available: false, reason: gpu.reason },
    loadAverage: Deno.loadavg(),
  };
}

/** Writes `<dir>/<name>-latest.json` (or `latest.json`) and a dated copy, each atomically. */
export async function writeResults(dir: string, prefix: string, results: Results): Promise<string[]> {
  const text = new TextEncoder().encode(JSON.stringify(results, null, 2) + "\n");
  const stamp = results.date.replace(/[:]/g, "-").replace(/\.\d+Z$/, "Z");
  const latest = `${dir}/${prefix}latest.json`;
  const dated = `${dir}/${prefix}${stamp}.json`;
  await writeAtomic(latest, text);
  await writeAtomic(dated, text);
  return [latest, dated];
}

/** Formats a number for the table: 3 significant digits, no exponent below 1e6. */
export function fmt(v: number | null): string {
  if (v === null) return "-";
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toString();
  if (a >= 100) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  if (a === 0) return "0";
  return v.toPrecision(3);
}

/** Prints a padded text table. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/** The label of a configuration, e.g. `wasm/2t`. */
export function configLabel(backend: string, threads: number): string {
  return `${backend}/${threads}t`;
}

/**
 * The results as a table: one row per (workload, metric), one column per configuration, with the
 * notes of null values listed under it.
 */
export function resultsTable(allRuns: readonly Run[]): string {
  // The memory profile's per-phase numbers get their own tables (see memoryTables).
  const runs = allRuns.filter((r) => !r.metric.startsWith("mem."));
  const configs: string[] = [];
  for (const r of runs) {
    const c = configLabel(r.backend, r.threads);
    if (!configs.includes(c)) configs.push(c);
  }
  const keys: string[] = [];
  const cell = new Map<string, Run>();
  for (const r of runs) {
    const k = `${r.workload}\u0000${r.metric}\u0000${r.unit}`;
    if (!keys.includes(k)) keys.push(k);
    cell.set(`${k}\u0000${configLabel(r.backend, r.threads)}`, r);
  }
  const rows = keys.map((k) => {
    const [w, m, u] = k.split("\u0000");
    return [
      w,
      m,
      u,
      ...configs.map((c) => {
        const r = cell.get(`${k}\u0000${c}`);
        return r ? (r.value === null ? "n/a" : fmt(r.value)) : "";
      }),
    ];
  });
  const notes = runs.filter((r) => r.note && r.value === null).map((r) =>
    `  ${r.workload} ${configLabel(r.backend, r.threads)} ${r.metric}: ${r.note}`
  );
  const uniq = [...new Set(notes)];
  return table(["workload", "metric", "unit", ...configs], rows) + (uniq.length ? "\nnotes:\n" + uniq.join("\n") : "");
}

/** The memory profiles in a results file, one table per workload and configuration (MB). */
export function memoryTables(runs: readonly Run[]): string {
  const groups = new Map<string, Map<string, Map<string, number | null>>>();
  for (const r of runs) {
    const m = /^mem\.(.+)\.([a-z_]+)$/.exec(r.metric);
    if (!m) continue;
    const key = `${r.workload} ${configLabel(r.backend, r.threads)}`;
    if (!groups.has(key)) groups.set(key, new Map());
    const phases = groups.get(key)!;
    if (!phases.has(m[1])) phases.set(m[1], new Map());
    phases.get(m[1])!.set(m[2], r.value);
  }
  const cols = ["peak_rss", "js_heap", "js_external", "wasm_heap", "gpu"];
  const out: string[] = [];
  for (const [key, phases] of groups) {
    const rows = [...phases].map(([ph, v]) => [ph, ...cols.map((c) => fmt(v.get(c) ?? null))]);
    out.push(
      `memory profile, ${key} (MB):\n` +
        table(["phase", "peak RSS", "JS heap", "JS external", "wasm heap", "GPU peak"], rows),
    );
  }
  return out.join("\n\n");
}
