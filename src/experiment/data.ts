/**
 * The experiment's data: the training files each method reads, and the held-out prompts.
 *
 * Pair methods read the pairs file as it is. Reward-group methods read the groups file; for a K
 * smaller than the file's, every group is split into consecutive chunks of K completions with their
 * rewards (K = 2 from K = 4: completions 1–2 and 3–4), so both K see the very same completions and
 * rewards. With `trainExamples`, each file keeps its first N lines (groups: before splitting). The
 * files a run trains on are written under `<out>/data/` (atomically), so the run can be redone from
 * its directory alone.
 *
 * @module
 */

import { type Dataset, readDataset } from "../data/formats.ts";
import { DataError } from "../data/jsonl.ts";
import { type FileSink, type FileSource, joinPath } from "../io/files.ts";
import type { LoadedModel } from "../models/load.ts";

/** A held-out prompt: its text (what the oracle sees) and its token ids (what the model sees). */
export interface EvalPrompt {
  text: string;
  ids: number[];
}

/** Reads the held-out prompts (text prompts of any record kind), the first `n`. */
export async function readEvalPrompts(
  path: string,
  model: LoadedModel,
  n: number,
  files: FileSource,
): Promise<EvalPrompt[]> {
  const ds = await readDataset(path, { files, kind: "prompts", vocabSize: model.config.vocabSize });
  if (ds.conversational) {
    throw new DataError(
      { file: path, line: null, field: "prompt" },
      "the experiment takes text or token-id prompts, not conversations: the oracle scores prompt + completion text",
    );
  }
  const records = ds.records.slice(0, n);
  if (records.length < n) {
    throw new DataError(
      { file: path, line: null, field: null },
      `--eval-prompts ${n} asks for more prompts than the file holds (${ds.records.length})`,
    );
  }
  return records.map((r) => {
    if (typeof r.prompt === "string") {
      // As the trainer tokenizes prompts: with the tokenizer's special tokens.
      return { text: r.prompt, ids: model.tokenizer.encode(r.prompt, { addSpecialTokens: true }) };
    }
    const ids = r.prompt as number[];
    return { text: model.tokenizer.decode(ids, { skipSpecialTokens: true }), ids };
  });
}

/** The raw JSON objects of a validated file, in line order (fields other than ours kept). */
async function rawRecords(path: string, files: FileSource): Promise<Record<string, unknown>[]> {
  const text = await files.readText(path);
  return text.replace(/^\uFEFF/, "").split(/\r?\n/).filter((l) => l.trim().length > 0).map((l) => JSON.parse(l));
}

/** Checks the training files' kinds and the group size against the methods' K. */
export async function checkTrainingData(
  paths: { pairs: string | null; groups: string | null },
  model: LoadedModel,
  ks: readonly number[],
  files: FileSource,
): Promise<{ pairs: Dataset | null; groups: Dataset | null; groupK: number | null }> {
  const read = async (path: string | null, kind: "pairs" | "groups") => {
    if (path === null) return null;
    const ds = await readDataset(path, { files, vocabSize: model.config.vocabSize });
    if (ds.kind !== kind) {
      throw new DataError(
        { file: path, line: null, field: null },
        `expected ${
          kind === "pairs"
            ? 'preference pairs {"prompt","chosen","rejected"}'
            : 'reward groups {"prompt","completions","rewards"}'
        }, got ${ds.kind}`,
      );
    }
    return ds;
  };
  const pairs = await read(paths.pairs, "pairs");
  const groups = await read(paths.groups, "groups");
  let groupK: number | null = null;
  if (groups && groups.kind === "groups") {
    const K = groupK = groups.records[0].completions.length;
    for (const k of ks) {
      if (K % k !== 0) {
        throw new DataError(
          { file: groups.file, line: null, field: "completions" },
          `groups of ${K} completions cannot be split into groups of K = ${k}`,
        );
      }
    }
  }
  return { pairs, groups, groupK };
}

/** Splits one raw group record into chunks of `k` completions (text or `_ids` form). */
export function splitGroup(rec: Record<string, unknown>, k: number): Record<string, unknown>[] {
  const key = "completions" in rec ? "completions" : "completions_ids";
  const completions = rec[key] as unknown[];
  const rewards = rec.rewards as number[];
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < completions.length; i += k) {
    out.push({ ...rec, [key]: completions.slice(i, i + k), rewards: rewards.slice(i, i + k) });
  }
  return out;
}

/**
 * Writes the training file of one data kind and K under `<out>/data/` (the first `limit` source
 * examples; groups split after that) and returns its path: `pairs.jsonl`, or `groups-k<K>.jsonl`.
 */
export async function writeTrainingFile(
  source: string,
  kind: "pairs" | "groups",
  k: number,
  limit: number,
  out: string,
  files: FileSource & FileSink,
): Promise<string> {
  let recs = await rawRecords(source, files);
  recs = recs.slice(0, limit);
  if (kind === "groups") recs = recs.flatMap((r) => splitGroup(r, k));
  const dir = joinPath(out, "data");
  await files.mkdir(dir);
  const path = joinPath(dir, kind === "pairs" ? "pairs.jsonl" : `groups-k${k}.jsonl`);
  await files.writeText(path, recs.map((r) => JSON.stringify(r)).join("\n") + "\n");
  return path;
}
