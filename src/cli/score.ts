/**
 * `score --model DIR [--adapter DIR] --data FILE [--backend auto|webgpu|wasm] [--temperature F]
 * [--batch-size N] [--json]`: log π(completion | prompt) of every completion in a JSONL file.
 *
 * Line formats (TRL's and the EXO code's), text or pre-tokenized:
 * - `{"prompt", "chosen", "rejected"}` → `{"chosen_logp", "rejected_logp"}`
 * - `{"prompt", "completions": [...], "rewards"?}` → `{"completion_logps": [...]}`
 * - `{"prompt", "completion"}` → `{"logp"}`
 * - `prompt_ids`, `chosen_ids`, `rejected_ids`, `completions_ids`, `completion_ids` are used verbatim.
 *
 * Text is encoded as TRL does: the prompt with the tokenizer's special tokens, each completion
 * without them and with EOS appended. (This encoding is private to the command for now; the data
 * module owns the general one.)
 *
 * @module
 */

import { parseArgs } from "node:util";
import { localFiles } from "../io/files.ts";
import { readAdapter } from "../lora/adapter.ts";
import { type LoadedModel, loadModel } from "../models/load.ts";
import { Scorer, type ScoreSequence } from "../models/score.ts";
import type { Tokenizer } from "../models/tokenizer.ts";
import type { BackendPreference } from "../runtime/backend.ts";
import { isInputError } from "./errors.ts";

const USAGE = "Usage: deno task cli score --model DIR --data FILE [options]\n" +
  "  --model DIR          Hugging Face model directory\n" +
  "  --adapter DIR        PEFT LoRA adapter to apply (default: the base model)\n" +
  "  --data FILE          JSONL: {prompt, chosen, rejected} | {prompt, completions} | {prompt, completion}\n" +
  "                       or the *_ids variants\n" +
  "  --backend B          auto | webgpu | wasm (default auto)\n" +
  "  --temperature F      divide the logits by F before log-softmax (default 1)\n" +
  "  --batch-size N       sequences per run (default 8)\n" +
  "  --json               print one JSON object per input line";

/** A bad data line, reported as `file:line: message`. */
class DataError extends Error {}

/** One input line after encoding: which sequences it owns, and how to print them. */
interface Encoded {
  line: number;
  kind: "pair" | "group" | "single";
  seqs: ScoreSequence[];
}

type Json = Record<string, unknown>;

function checkIds(v: unknown, field: string, where: string, vocab: number): number[] {
  if (!Array.isArray(v) || v.length === 0) {
    throw new DataError(`${where}: field "${field}" must be a non-empty list of token ids`);
  }
  for (const id of v) {
    if (!Number.isSafeInteger(id) || id < 0 || id >= vocab) {
      throw new DataError(`${where}: field "${field}" holds ${JSON.stringify(id)}, not a token id in [0, ${vocab})`);
    }
  }
  return v as number[];
}

function checkText(v: unknown, field: string, where: string): string {
  if (typeof v !== "string") throw new DataError(`${where}: field "${field}" must be a string`);
  return v;
}

/** Encodes one line's prompt and completions (TRL: prompt with specials; completion without, plus EOS). */
function encodeLine(o: Json, where: string, tok: Tokenizer, eos: number | null, vocab: number): Omit<Encoded, "line"> {
  let prompt: number[];
  if ("prompt_ids" in o) prompt = checkIds(o.prompt_ids, "prompt_ids", where, vocab);
  else if ("prompt" in o) prompt = tok.encode(checkText(o.prompt, "prompt", where));
  else throw new DataError(`${where}: missing field "prompt" (or "prompt_ids")`);
  if (prompt.length === 0) throw new DataError(`${where}: field "prompt" encodes to no tokens`);
  const completion = (field: string): number[] => {
    if (`${field}_ids` in o) return checkIds(o[`${field}_ids`], `${field}_ids`, where, vocab);
    const ids = tok.encode(checkText(o[field], field, where), { addSpecialTokens: false });
    return eos === null ? ids : [...ids, eos];
  };
  const seq = (c: number[]): ScoreSequence => ({ promptIds: prompt, completionIds: c });
  if ("chosen" in o || "chosen_ids" in o || "rejected" in o || "rejected_ids" in o) {
    for (const f of ["chosen", "rejected"]) {
      if (!(f in o) && !(`${f}_ids` in o)) throw new DataError(`${where}: missing field "${f}" (or "${f}_ids")`);
    }
    return { kind: "pair", seqs: [seq(completion("chosen")), seq(completion("rejected"))] };
  }
  if ("completions_ids" in o || "completions" in o) {
    const field = "completions_ids" in o ? "completions_ids" : "completions";
    const list = o[field];
    if (!Array.isArray(list) || list.length === 0) {
      throw new DataError(`${where}: field "${field}" must be a non-empty list`);
    }
    const seqs = list.map((c, k) => {
      if (field === "completions_ids") return seq(checkIds(c, `completions_ids[${k}]`, where, vocab));
      const ids = tok.encode(checkText(c, `completions[${k}]`, where), { addSpecialTokens: false });
      return seq(eos === null ? ids : [...ids, eos]);
    });
    if ("rewards" in o) {
      const r = o.rewards;
      if (
        !Array.isArray(r) || r.length !== list.length || r.some((x) => typeof x !== "number" || !Number.isFinite(x))
      ) {
        throw new DataError(`${where}: field "rewards" must be a list of ${list.length} finite numbers`);
      }
    }
    return { kind: "group", seqs };
  }
  if ("completion" in o || "completion_ids" in o) return { kind: "single", seqs: [seq(completion("completion"))] };
  throw new DataError(
    `${where}: no completion field: expected "chosen"/"rejected", "completions" or "completion" (or their *_ids)`,
  );
}

/** Reads and encodes a JSONL file; throws {@link DataError} naming file:line and field. */
async function readData(path: string, model: LoadedModel): Promise<Encoded[]> {
  const text = await localFiles().readText(path);
  const tok = model.tokenizer;
  const eos = model.generation.eosTokenIds[0] ?? tok.eosId;
  const out: Encoded[] = [];
  text.split("\n").forEach((raw, i) => {
    const where = `${path}:${i + 1}`;
    if (raw.trim() === "") return;
    let o: unknown;
    try {
      o = JSON.parse(raw);
    } catch (e) {
      throw new DataError(`${where}: not valid JSON: ${(e as Error).message}`);
    }
    if (!o || typeof o !== "object" || Array.isArray(o)) {
      throw new DataError(`${where}: each line must be a JSON object`);
    }
    out.push({ line: i + 1, ...encodeLine(o as Json, where, tok, eos, model.config.vocabSize) });
  });
  if (out.length === 0) throw new DataError(`${path}: no data lines`);
  return out;
}

function result(e: Encoded, logps: number[]): Json {
  if (e.kind === "pair") return { chosen_logp: logps[0], rejected_logp: logps[1] };
  if (e.kind === "group") return { completion_logps: logps };
  return { logp: logps[0] };
}

/** Prints the error; exit 2 for bad input (data, model, adapter, options), 1 for anything else. */
function failure(e: unknown): number {
  console.error((e as Error)?.message ?? String(e));
  return e instanceof DataError || isInputError(e) ? 2 : 1;
}

/** CLI entry. */
export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        model: { type: "string" },
        adapter: { type: "string" },
        data: { type: "string" },
        backend: { type: "string", default: "auto" },
        temperature: { type: "string", default: "1" },
        "batch-size": { type: "string", default: "8" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
    }));
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.model === undefined || values.data === undefined) {
    console.error(`score needs --model and --data\n${USAGE}`);
    return 2;
  }
  const temperature = Number(values.temperature);
  if (!(temperature > 0) || !Number.isFinite(temperature)) {
    console.error(`--temperature must be a positive number, got ${values.temperature}`);
    return 2;
  }
  const batchSize = Number(values["batch-size"]);
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    console.error(`--batch-size must be a positive integer, got ${values["batch-size"]}`);
    return 2;
  }
  if (!["auto", "webgpu", "wasm"].includes(values.backend)) {
    console.error(`--backend must be auto, webgpu or wasm, got ${values.backend}`);
    return 2;
  }
  let model: LoadedModel, data: Encoded[], scorer: Scorer;
  try {
    model = await loadModel(values.model);
    data = await readData(values.data, model);
    const adapter = values.adapter ? await readAdapter(values.adapter, localFiles(), model.config) : undefined;
    scorer = await Scorer.create(model, { backend: values.backend as BackendPreference, adapter });
  } catch (e) {
    return failure(e);
  }
  try {
    const logps = await scorer.score(data.flatMap((d) => d.seqs), { temperature, batchSize });
    let k = 0;
    for (const d of data) {
      const r = result(d, logps.slice(k, k + d.seqs.length));
      k += d.seqs.length;
      if (values.json) console.log(JSON.stringify(r));
      else {
        const body = Object.entries(r).map(([key, v]) =>
          `${key} ${Array.isArray(v) ? v.map((x) => x.toFixed(4)).join(" ") : (v as number).toFixed(4)}`
        );
        console.log(`line ${d.line}: ${body.join("  ")}`);
      }
    }
    if (!values.json) console.error(`scored ${logps.length} sequences on ${scorer.backend} (${scorer.reason})`);
  } catch (e) {
    return failure(e);
  } finally {
    await scorer.release();
  }
  return 0;
}
