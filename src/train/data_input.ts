/**
 * The trainer's data intake: `data` as a JSONL file's path, a list of records, or an (async)
 * iterable of records, validated alike (`src/data/formats.ts`), so that the same records from any
 * of the three give the same dataset, batches and adapter.
 *
 * @module
 */

import { type Dataset, validateAll, validateRecords } from "../data/formats.ts";
import { DataError } from "../data/jsonl.ts";
import type { FileSource } from "../io/files.ts";
import type { DataRecord, TrainData } from "./options.ts";

/** Validated data and what identifies it. */
export interface TrainDataInput {
  dataset: Dataset;
  /** The name errors use: the file's path, or `data` for records. */
  name: string;
  /** Text that identifies the data for a resume's fingerprint: the file's text, or the records as JSON lines. */
  key: string;
}

/** Reads and validates `data` (a path read through `files`, or records); throws a {@link DataError}. */
export async function readTrainData(
  data: TrainData,
  files: FileSource,
  options: { vocabSize?: number } = {},
): Promise<TrainDataInput> {
  if (typeof data === "string") {
    const text = await files.readText(data);
    return { dataset: validateAll(text, { file: data, vocabSize: options.vocabSize }), name: data, key: text };
  }
  const name = "data";
  const records = Array.isArray(data) ? data : await collect(data as Iterable<DataRecord> | AsyncIterable<DataRecord>);
  const dataset = validateRecords(records, { file: name, vocabSize: options.vocabSize });
  return { dataset, name, key: recordsKey(dataset) };
}

/** Reads a stream of records to its end; an error from the stream names the record it stopped at. */
async function collect(source: Iterable<DataRecord> | AsyncIterable<DataRecord>): Promise<unknown[]> {
  const out: unknown[] = [];
  try {
    for await (const r of source) out.push(r);
  } catch (e) {
    throw new DataError(
      { file: "data", line: out.length, field: null, unit: "record" },
      `the data stream failed: ${(e as Error)?.message ?? e}`,
    );
  }
  return out;
}

/** The validated records as JSON lines (only the fields training reads; bigints as strings). */
function recordsKey(ds: Dataset): string {
  const plain = (_: string, v: unknown) => (typeof v === "bigint" ? String(v) : v);
  return ds.records.map((r) => JSON.stringify({ ...r, line: undefined }, plain)).join("\n");
}
