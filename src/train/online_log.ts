/**
 * The online tuner's intake: each feedback record is validated and tokenized as a line of a JSONL
 * file would be (the same formats and errors, naming the record's index: `feedback[17]: field
 * "chosen": ...`), then appended to the feedback log, `<dir>/feedback.jsonl`, one JSON line per
 * record in the order they were acknowledged.
 *
 * The log is the tuner's durable record: record i of the log is example i. A process that dies in
 * the middle of an append leaves a last line without its newline; that record was never
 * acknowledged (its `add()` had not resolved), and {@link FeedbackLog.recover} drops it.
 *
 * @module
 */

import { encodeDataset, type EncodedGroup, type EncodedPair, type Tokenizer } from "../data/encode.ts";
import { validateRecords } from "../data/formats.ts";
import { DataError } from "../data/jsonl.ts";
import { type FileSink, type FileSource, joinPath } from "../io/files.ts";

/** The log's file name inside the tuner's directory. */
export const FEEDBACK_FILE = "feedback.jsonl";

/** One encoded example of the log, with its index (= its line number − 1). */
export type FeedbackExample = EncodedPair | EncodedGroup;

/** Validates and tokenizes feedback records one at a time. */
export class FeedbackEncoder {
  /** Completions per reward group: fixed by the first group (null for pairs and before it). */
  k: number | null;
  /** Records whose prompt or completions were truncated to the model's context. */
  truncated = 0;

  constructor(
    readonly kind: "pairs" | "groups",
    readonly tokenizer: Tokenizer,
    readonly config: { vocabSize: number; maxPositions: number },
    k: number | null = null,
  ) {
    this.k = k;
  }

  /**
   * The example of `record`, which will be example `index`; throws a {@link DataError} naming
   * `feedback[index]` and the field. Does not change `k` (see {@link accept}).
   */
  encode(record: unknown, index: number): FeedbackExample {
    const at = { file: "feedback", line: index, field: null, unit: "record" as const };
    const ds = validateRecords([record], {
      file: "feedback",
      firstIndex: index,
      vocabSize: this.config.vocabSize,
    });
    if (ds.kind !== this.kind) {
      const want = this.kind === "pairs"
        ? 'preference pairs {"prompt","chosen","rejected"}'
        : 'reward groups {"prompt","completions","rewards"}';
      throw new DataError(at, `this tuner's loss takes ${want}, got a ${ds.kind} record`);
    }
    const enc = encodeDataset(ds, this.tokenizer, {
      maxLength: this.config.maxPositions,
      vocabSize: this.config.vocabSize,
    });
    const ex = enc.examples[0] as FeedbackExample;
    if ("completionIds" in ex && this.k !== null && ex.completionIds.length !== this.k) {
      throw new DataError(
        { ...at, field: ds.tokenized ? "completions_ids" : "completions" },
        `expected ${this.k} completions like the first group (every group must have the same number), got ${ex.completionIds.length}`,
      );
    }
    if (enc.truncation.truncatedExamples > 0) this.truncated++;
    return ex;
  }

  /** Takes note of an example that entered the log (the first group fixes `k`). */
  accept(ex: FeedbackExample): void {
    if ("completionIds" in ex && this.k === null) this.k = ex.completionIds.length;
  }
}

/** The JSON line of a record; a record that JSON cannot hold is a {@link DataError}. */
export function recordLine(record: unknown, index: number): string {
  let line: string | undefined;
  try {
    line = JSON.stringify(record);
  } catch (e) {
    throw new DataError(
      { file: "feedback", line: index, field: null, unit: "record" },
      `cannot be stored as JSON: ${(e as Error).message}`,
    );
  }
  if (line === undefined) {
    throw new DataError({ file: "feedback", line: index, field: null, unit: "record" }, "cannot be stored as JSON");
  }
  return line;
}

/** The feedback log in a sink (or nowhere, without a directory). */
export class FeedbackLog {
  readonly path: string | null;
  #files: FileSource & FileSink;
  #writes: Promise<void> = Promise.resolve();

  constructor(files: FileSource & FileSink, dir: string | null) {
    this.#files = files;
    this.path = dir === null ? null : joinPath(dir, FEEDBACK_FILE);
  }

  /**
   * The log's records, in order. A last line without its newline (an append cut short) is dropped
   * and the file rewritten without it, atomically; `torn` says whether that happened.
   */
  async recover(): Promise<{ records: unknown[]; torn: boolean }> {
    if (this.path === null || !(await this.#files.exists(this.path))) return { records: [], torn: false };
    const text = await this.#files.readText(this.path);
    const end = text.lastIndexOf("\n") + 1;
    const torn = end < text.length;
    if (torn) await this.#files.writeText(this.path, text.slice(0, end));
    const records: unknown[] = [];
    const lines = text.slice(0, end).split("\n");
    for (let i = 0; i < lines.length - 1; i++) {
      try {
        records.push(JSON.parse(lines[i]));
      } catch (e) {
        throw new DataError(
          { file: this.path, line: i + 1, field: null },
          `malformed JSON in the feedback log (${(e as Error).message}): the log was changed outside the tuner`,
        );
      }
    }
    return { records, torn };
  }

  /**
   * Appends one record's line after every earlier append; resolves once the sink has it, then runs
   * `then` (still in log order).
   */
  append(line: string, then: () => void): Promise<void> {
    const path = this.path;
    const next = this.#writes.then(async () => {
      if (path !== null) await this.#files.appendText(path, line + "\n");
      then();
    });
    this.#writes = next.catch(() => {});
    return next;
  }

  /** Resolves when every append so far has finished. */
  async settled(): Promise<void> {
    await this.#writes;
  }
}
