/**
 * Training checkpoints: the adapter (PEFT format), the optimizer moments, and the loop state (step,
 * data cursor, RNG state), written atomically into `<out>/checkpoints/step-<N>/`.
 *
 * A checkpoint directory is assembled under a temporary name and renamed into place, so a crash
 * mid-write never leaves a half checkpoint that `--resume` would pick up. The newest complete one
 * wins; older ones beyond `keep` are removed.
 *
 * @module
 */

import { joinPath } from "../io/files.ts";
import type { FileSink, FileSource } from "../io/files.ts";
import { type LoraAdapter, readAdapter, writeAdapter } from "../lora/adapter.ts";
import { parseSafetensors, serializeSafetensors, toFloat32 } from "../models/safetensors.ts";
import type { TensorData } from "../onnx/graph.ts";
import type { DataCursor } from "../data/batching.ts";
import type { RngState } from "../util/rng.ts";

/** The loop state saved beside the adapter. */
export interface TrainerState {
  /** Optimizer steps done. */
  step: number;
  /** The next batch to take. */
  cursor: DataCursor;
  /** The trainer's RNG state (dropout/sampling, if any). */
  rng: RngState;
  /** Fingerprint of the options that must not change across a resume (loss, data, model, ...). */
  fingerprint: string;
  /** The fingerprinted option values in plain form, so that a refused resume can name what changed. */
  options?: Record<string, unknown>;
  /** Lines of metrics.jsonl written up to this step (resume truncates the file back to them). */
  metricsLines: number;
  /** Seconds spent training so far (for tokens/s and ETA across resumes). */
  elapsedSeconds: number;
  /** An online tuner's own state (`src/train/online.ts`); absent in a trainer's checkpoint. */
  online?: OnlineCheckpointState;
}

/** What an online tuner keeps beside the adapter and optimizer (`src/train/online.ts`). */
export interface OnlineCheckpointState {
  /** Examples of the feedback log trained on (the log's first `consumed` records). */
  consumed: number;
  /** Completions per reward group (null for pairs, or before the first group). */
  k: number | null;
  /** Reference log-probs of the replay buffer's examples: the `bufferRefs.length` records before `consumed`. */
  bufferRefs: number[][];
}

/** A loaded checkpoint. */
export interface Checkpoint {
  dir: string;
  state: TrainerState;
  adapter: LoraAdapter;
  /** Optimizer moments by name (e.g. `<PEFT key>::m`), float32. */
  optimizer: Map<string, Float32Array>;
}

const STATE_FILE = "trainer_state.json";
const OPTIMIZER_FILE = "optimizer.safetensors";

/** `step-000012`: zero-padded so names sort by step. */
export function checkpointName(step: number): string {
  return `step-${String(step).padStart(6, "0")}`;
}

/**
 * Writes a checkpoint atomically and prunes old ones, keeping the newest `keep` (`Infinity`: all).
 * Returns its directory.
 */
export async function saveCheckpoint(
  outDir: string,
  fs: FileSink & FileSource,
  ckpt: { state: TrainerState; adapter: LoraAdapter; optimizer: Map<string, Float32Array> },
  keep = 2,
): Promise<string> {
  const root = joinPath(outDir, "checkpoints");
  await fs.mkdir(root);
  const final = joinPath(root, checkpointName(ckpt.state.step));
  const tmp = joinPath(root, `.${checkpointName(ckpt.state.step)}.${Date.now()}.tmp`);
  await fs.mkdir(tmp);
  await writeAdapter(tmp, ckpt.adapter, fs);
  const moments = new Map<string, TensorData>();
  for (const [k, v] of ckpt.optimizer) moments.set(k, { dtype: "float32", shape: [v.length], data: v });
  await fs.writeBytes(joinPath(tmp, OPTIMIZER_FILE), serializeSafetensors(moments, { format: "exo-tune" }));
  await fs.writeText(joinPath(tmp, STATE_FILE), JSON.stringify(ckpt.state, null, 2) + "\n");
  await fs.remove(final);
  await fs.rename(tmp, final);
  const names = (await fs.list(root)).filter((n) => /^step-\d+$/.test(n)).sort();
  for (const old of names.slice(0, Math.max(0, names.length - keep))) await fs.remove(joinPath(root, old));
  return final;
}

/** The newest complete checkpoint under `<outDir>/checkpoints`, or null. */
export async function latestCheckpoint(
  outDir: string,
  fs: FileSource & Pick<FileSink, "list">,
): Promise<string | null> {
  const root = joinPath(outDir, "checkpoints");
  if (!(await fs.exists(root))) return null;
  const names = (await fs.list(root)).filter((n) => /^step-\d+$/.test(n)).sort();
  for (let i = names.length - 1; i >= 0; i--) {
    const dir = joinPath(root, names[i]);
    if (await fs.exists(joinPath(dir, STATE_FILE))) return dir;
  }
  return null;
}

/** Reads a checkpoint written by {@link saveCheckpoint}. */
export async function loadCheckpoint(dir: string, fs: FileSource): Promise<Checkpoint> {
  const stateText = await fs.readText(joinPath(dir, STATE_FILE));
  let state: TrainerState;
  try {
    state = JSON.parse(stateText) as TrainerState;
  } catch (e) {
    throw new Error(`${joinPath(dir, STATE_FILE)}: not valid JSON (${(e as Error).message}); delete the checkpoint`);
  }
  for (const k of ["step", "cursor", "rng", "fingerprint", "metricsLines"] as const) {
    if (!(k in state)) throw new Error(`${joinPath(dir, STATE_FILE)}: field "${k}" is missing; delete the checkpoint`);
  }
  const adapter = await readAdapter(dir, fs);
  const file = joinPath(dir, OPTIMIZER_FILE);
  const { tensors } = parseSafetensors(await fs.readBytes(file), file);
  const optimizer = new Map<string, Float32Array>();
  for (const [k, t] of tensors) optimizer.set(k, toFloat32(t, k).slice());
  return { dir, state, adapter, optimizer };
}
