/**
 * Shared pieces of the trainer tests: fixture paths, the train CLI run in-process with its output
 * captured, directory snapshots (to prove `--out` is untouched), generated pair files, and the
 * golden-gradient comparison.
 */

import assert from "node:assert/strict";
import process from "node:process";
import { run } from "../../src/cli/train.ts";
import { localFiles } from "../../src/io/files.ts";
import { type LoraAdapter, readAdapter } from "../../src/lora/adapter.ts";
import { resolveBackend } from "../../src/runtime/backend.ts";
import { Rng } from "../../src/util/rng.ts";

/** The repository root (tests run the CLI from there). */
export const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
/** The fixture directory. */
export const FX = `${ROOT}/tests/fixtures`;
/** The fixture models; tiny-llama-v4 is tiny-llama with a transformers-4 config. */
export const MODELS = ["tiny-gpt2", "tiny-llama", "tiny-llama-v4"] as const;
/** `deno` itself, for subprocesses. */
export const DENO = Deno.execPath();

/** What the CLI printed and returned. */
export interface CliResult {
  code: number;
  /** console.error lines and raw process.stderr writes (the progress bar), joined. */
  stderr: string;
  /** console.log lines. */
  stdout: string;
}

/** Runs `train` in-process (the CLI's `run(argv)`), capturing its console output. */
export async function runTrainCli(argv: string[]): Promise<CliResult> {
  const err: string[] = [], out: string[] = [];
  const saved = { error: console.error, log: console.log, write: process.stderr.write };
  console.error = (...a: unknown[]) => err.push(a.map(String).join(" ") + "\n");
  console.log = (...a: unknown[]) => out.push(a.map(String).join(" ") + "\n");
  process.stderr.write = ((t: string | Uint8Array) => {
    err.push(typeof t === "string" ? t : new TextDecoder().decode(t));
    return true;
  }) as typeof process.stderr.write;
  try {
    const code = await run(argv);
    return { code, stderr: err.join(""), stdout: out.join("") };
  } finally {
    console.error = saved.error;
    console.log = saved.log;
    process.stderr.write = saved.write;
  }
}

/** SHA-256 of bytes, hex (short strings keep assertion diffs small). */
export async function digest(bytes: Uint8Array): Promise<string> {
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(h, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The digest of a file's bytes. */
export async function fileDigest(path: string): Promise<string> {
  return await digest(await Deno.readFile(path));
}

/**
 * Every entry under `dir` (relative path -> SHA-256 of the file, "dir" for directories), sorted, or
 * null when `dir` does not exist.
 */
export async function snapshot(dir: string): Promise<Record<string, string> | null> {
  try {
    await Deno.stat(dir);
  } catch {
    return null;
  }
  const entries: [string, string][] = [];
  const walk = async (rel: string) => {
    for await (const e of Deno.readDir(rel ? `${dir}/${rel}` : dir)) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) {
        entries.push([`${p}/`, "dir"]);
        await walk(p);
      } else entries.push([p, await fileDigest(`${dir}/${p}`)]);
    }
  };
  await walk("");
  return Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Lists every path under `dir`, recursively (relative). */
export async function listTree(dir: string): Promise<string[]> {
  return Object.keys((await snapshot(dir)) ?? {});
}

/** Writes `n` random pre-tokenized preference pairs (ids < 512, valid for every fixture model). */
export async function writePairs(path: string, n: number, seed: number): Promise<void> {
  const rng = new Rng(seed);
  const ids = (lo: number, hi: number) => Array.from({ length: lo + rng.int(hi - lo + 1) }, () => 3 + rng.int(500));
  const lines = Array.from(
    { length: n },
    () => JSON.stringify({ prompt_ids: ids(2, 6), chosen_ids: ids(1, 6), rejected_ids: ids(1, 6) }),
  );
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
}

/** Reads a PEFT adapter directory. */
export async function adapterAt(dir: string): Promise<LoraAdapter> {
  return await readAdapter(dir, localFiles());
}

/** golden.json of a fixture model (cached). */
const goldenCache = new Map<string, Golden>();
/** The parts of golden.json the trainer tests use. */
export interface Golden {
  losses: {
    hyperparams: Record<string, Record<string, number>>;
    /** The reward groups of the golden losses (= tests/fixtures/rewards.jsonl). */
    groups: { rewards: number[] }[];
    float64: Record<string, unknown> & {
      u_pairs: { chosen: number[]; rejected: number[] };
      logp_pairs: Record<string, number[]>;
    };
  };
}
export async function golden(model: string): Promise<Golden> {
  if (!goldenCache.has(model)) {
    goldenCache.set(model, JSON.parse(await Deno.readTextFile(`${FX}/${model}/golden.json`)));
  }
  return goldenCache.get(model)!;
}

/** A golden loss block: `losses.float64.<exo_pref|...>`. */
export async function goldenLoss(model: string, loss: string): Promise<{
  loss: number;
  grad: Record<string, { shape: number[]; values: unknown[] }>;
}> {
  return (await golden(model)).losses.float64[loss.replace("-", "_")] as {
    loss: number;
    grad: Record<string, { shape: number[]; values: unknown[] }>;
  };
}

/**
 * Checks `after − before == −grad` tensor by tensor. The error of a tensor is
 * max_i |(after_i − before_i) + grad_i| / max_i |grad_i|: the update's worst element error relative to
 * the tensor's largest gradient magnitude (the scale of the update). Returns the worst over tensors.
 */
export function checkMinusGradient(
  before: LoraAdapter,
  after: LoraAdapter,
  grad: Record<string, { shape: number[]; values: unknown[] }>,
  tol: number,
  label: string,
): number {
  assert.deepEqual([...after.tensors.keys()].sort(), Object.keys(grad).sort(), `${label}: adapter keys`);
  let worst = 0;
  for (const [key, t] of before.tensors) {
    const g = (grad[key].values as unknown[]).flat(4) as number[];
    const b = t.data as Float32Array, a = after.tensors.get(key)!.data as Float32Array;
    assert.deepEqual(after.tensors.get(key)!.shape, grad[key].shape, `${label}: ${key} shape`);
    assert.equal(a.length, g.length, `${label}: ${key} size`);
    const scale = Math.max(...g.map(Math.abs));
    assert.ok(scale > 0, `${label}: ${key} has an all-zero golden gradient; the check would be vacuous`);
    let err = 0;
    for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i] - b[i] + g[i]) / scale);
    assert.ok(err <= tol, `${label}: ${key}: update differs from -grad by ${err.toExponential(2)} of max|grad|`);
    worst = Math.max(worst, err);
  }
  return worst;
}

/** Max over tensors of max_i |x_i − y_i| / max_i |grad_i| (the same scale as {@link checkMinusGradient}). */
export function relativeDistance(
  x: LoraAdapter,
  y: LoraAdapter,
  grad: Record<string, { values: unknown[] }>,
): number {
  let worst = 0;
  for (const [key, t] of x.tensors) {
    const g = (grad[key].values as unknown[]).flat(4) as number[];
    const scale = Math.max(...g.map(Math.abs));
    const a = t.data as Float32Array, b = y.tensors.get(key)!.data as Float32Array;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / scale);
  }
  return worst;
}

/** Lines of a metrics.jsonl, parsed. */
export async function metricsOf(out: string): Promise<Record<string, number>[]> {
  const text = await Deno.readTextFile(`${out}/metrics.jsonl`);
  return text.split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l));
}

/**
 * True when a WebGPU adapter exists. Under `CI=true` its absence fails the test file (a WebGPU test
 * must not silently skip there); locally the WebGPU tests are skipped with a note.
 */
export async function webgpuOrSkip(): Promise<boolean> {
  try {
    await resolveBackend("webgpu");
    return true;
  } catch (e) {
    if (Deno.env.get("CI") === "true") throw e;
    console.warn(`Skipping a WebGPU test: ${(e as Error).message}`);
    return false;
  }
}
