/**
 * JSON Lines parsing with errors that point at the file, line and field, so a user can open the file
 * at the right place: `data/pairs.jsonl:17: field "chosen": expected a string, got number`.
 *
 * @module
 */

/**
 * Where a data problem is: file, 1-based line and the field inside the record (null when none). For
 * data given as a list of records rather than a file, `unit` is `"record"`, `file` names the list
 * (`data`) and `line` is the record's 0-based index: `data[3]: field "chosen": ...`.
 */
export interface DataLocation {
  file: string;
  line: number | null;
  field: string | null;
  /** What `line` counts: lines of a file (the default) or records of a list. */
  unit?: DataUnit;
}

/** What a data location's `line` counts. */
export type DataUnit = "line" | "record";

/**
 * A problem in a data file. `message` is the full `file:line: field "x": detail` text; the parts are
 * kept separately for callers that want them. An aggregate error (from `validateAll`) lists its
 * parts in `errors`; a single error lists itself.
 */
export class DataError extends Error implements DataLocation {
  readonly file: string;
  readonly line: number | null;
  readonly field: string | null;
  /** What `line` counts (`"record"`: a 0-based index into a list of records). */
  readonly unit: DataUnit;
  /** The message without the location prefix. */
  readonly detail: string;
  /** The individual errors (itself when it is not an aggregate). */
  readonly errors: readonly DataError[];

  constructor(where: DataLocation, detail: string, errors?: readonly DataError[]) {
    super(formatLocation(where) + detail);
    this.name = "DataError";
    this.file = where.file;
    this.line = where.line;
    this.field = where.field;
    this.unit = where.unit ?? "line";
    this.detail = detail;
    this.errors = errors ?? [this];
  }
}

/**
 * Throws the collected errors of a file, if any: one error as itself, several as one aggregate
 * {@link DataError} whose message lists them (`total` counts those left out of `errors` too).
 */
export function throwCollected(file: string, errors: readonly DataError[], total = errors.length): void {
  if (total === 0) return;
  if (total === 1) throw errors[0];
  const shown = total > errors.length ? `, the first ${errors.length}` : "";
  const list = errors.map((e) => `  ${e.message}`).join("\n");
  throw new DataError({ file, line: null, field: null }, `${total} errors${shown}:\n${list}`, errors);
}

/** A warning about data that is usable but probably not what the user meant (e.g. chosen equals rejected). */
export interface DataWarning extends DataLocation {
  /** The full `file:line: field "x": detail` text. */
  message: string;
}

/** Makes a {@link DataWarning}. */
export function dataWarning(where: DataLocation, detail: string): DataWarning {
  return { ...where, message: formatLocation(where) + detail };
}

/** `file:line: field "x": `, or `data[index]: field "x": ` for a record of a list (parts left out when absent). */
export function formatLocation(where: DataLocation): string {
  let s = where.file;
  if (where.line !== null) s += where.unit === "record" ? `[${where.line}]` : `:${where.line}`;
  s += ": ";
  if (where.field !== null) s += `field ${JSON.stringify(where.field)}: `;
  return s;
}

/** One non-blank line of a JSONL file: its parsed value, or the error that parsing it gave. */
export type JsonlRow = { line: number; value: unknown; error?: undefined } | { line: number; error: DataError };

/**
 * Splits JSONL text into rows and parses each. Blank lines (only whitespace) are skipped, a trailing
 * newline and CRLF line ends are fine, and a leading byte-order mark is dropped. A line that is not
 * valid JSON becomes a row with an error naming the line and the JSON parser's message; parsing goes on
 * with the next line so the caller can report many problems at once.
 */
export function parseJsonlRows(text: string, file: string): JsonlRow[] {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const rows: JsonlRow[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    let src = lines[i];
    if (src.endsWith("\r")) src = src.slice(0, -1);
    if (src.trim() === "") continue;
    const line = i + 1;
    try {
      rows.push({ line, value: JSON.parse(src) });
    } catch (e) {
      rows.push({ line, error: new DataError({ file, line, field: null }, `malformed JSON: ${jsonMessage(e)}`) });
    }
  }
  return rows;
}

/**
 * The JSON parser's message, with V8's "in JSON at position 41 (line 1 column 42)" turned into
 * "at column 42": the line is already named and a file-level "line 1" would mislead.
 */
function jsonMessage(e: unknown): string {
  return String((e as Error).message ?? e).replace(
    / in JSON at position (\d+)(?: \(line \d+ column \d+\))?/,
    (_, p: string) => ` at column ${Number(p) + 1}`,
  );
}

/** Parses JSONL text into `{line, value}` rows; throws the {@link DataError} of the first malformed line. */
export function parseJsonl(text: string, file: string): { line: number; value: unknown }[] {
  const out: { line: number; value: unknown }[] = [];
  for (const row of parseJsonlRows(text, file)) {
    if (row.error) throw row.error;
    out.push({ line: row.line, value: row.value });
  }
  return out;
}

/** The JSON type name of a value, as used in "expected X, got Y" messages. */
export function jsonTypeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number" && !Number.isFinite(v)) return String(v); // 1e400 parses to Infinity
  return typeof v;
}
