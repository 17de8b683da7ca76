/**
 * The preference-data formats users already have, their record types, format detection and
 * validation.
 *
 * | kind | text form | pre-tokenized form |
 * |---|---|---|
 * | `pairs` (TRL's standard preference format) | `{"prompt","chosen","rejected"}` | `{"prompt_ids","chosen_ids","rejected_ids"}` |
 * | `groups` (the EXO code's reward format) | `{"prompt","completions":[...],"rewards":[...]}` | `{"prompt_ids","completions_ids":[[...]],"rewards"}` |
 * | `prompt_completion` | `{"prompt","completion"}` | `{"prompt_ids","completion_ids"}` |
 * | `prompts` | `{"prompt"}` | `{"prompt_ids"}` |
 *
 * Token ids are arrays of non-negative integers, used verbatim. Unknown extra fields are ignored (so
 * a record holding both text and `*_ids` columns is read as pre-tokenized).
 *
 * TRL's conversational form puts lists of `{"role","content"}` messages where the text form has
 * strings: `{"prompt": [user turn...], "chosen": [assistant turn], "rejected": [assistant turn]}`,
 * and for reward groups `{"prompt": [...], "completions": [[...], [...]], "rewards"}`. In the
 * implicit-prompt variant the prompt is left out and every completion is a whole conversation; the
 * prompt is then their longest common leading run of messages (TRL's `extract_prompt`), found here
 * so that later stages always see an explicit prompt. (As in TRL, a text `prompt` beside
 * conversational completions is ignored in favour of the extracted one.) The chat template is
 * applied when the records are tokenized (`encode.ts`).
 *
 * @module
 */

import { type FileSource, localFiles } from "../io/files.ts";
import type { ChatMessage } from "../models/chat_template.ts";
import {
  DataError,
  type DataLocation,
  type DataUnit,
  type DataWarning,
  dataWarning,
  type JsonlRow,
  jsonTypeName,
  parseJsonlRows,
  throwCollected,
} from "./jsonl.ts";

/** A piece of an example: text to tokenize, token ids used verbatim, or chat messages to template. */
export type Segment = string | number[] | ChatMessage[];

/** True for a segment that is a list of chat messages. */
export function isConversation(s: Segment): s is ChatMessage[] {
  return Array.isArray(s) && s.length > 0 && typeof s[0] === "object";
}

/** Which record shape a file holds. */
export type DataKind = "pairs" | "groups" | "prompt_completion" | "prompts";

/** A file's format: the record shape and whether it is pre-tokenized. */
export interface DataFormat {
  kind: DataKind;
  tokenized: boolean;
  /** Message lists instead of strings (TRL's conversational format). */
  conversational: boolean;
}

/**
 * A preference pair. `line` is the 1-based line in the file (the 0-based index for data given as a
 * list of records; the same holds for every record type below).
 */
export interface PairRecord {
  line: number;
  prompt: Segment;
  chosen: Segment;
  rejected: Segment;
}

/** K completions of one prompt with their scalar rewards (K >= 2, the same K for the whole file). */
export interface GroupRecord {
  line: number;
  prompt: Segment;
  completions: Segment[];
  rewards: number[];
}

/** One prompt and one completion (supervised data, evaluation references). */
export interface PromptCompletionRecord {
  line: number;
  prompt: Segment;
  completion: Segment;
}

/** A prompt alone (evaluation and sampling). */
export interface PromptRecord {
  line: number;
  prompt: Segment;
}

/** A validated file (or list of records): its format, records and warnings. */
export type Dataset =
  & {
    file: string;
    tokenized: boolean;
    conversational: boolean;
    warnings: DataWarning[];
    /** What the records' `line` counts: `"record"` for a list of records (0-based indices). Default "line". */
    unit?: DataUnit;
  }
  & (
    | { kind: "pairs"; records: PairRecord[] }
    | { kind: "groups"; records: GroupRecord[] }
    | { kind: "prompt_completion"; records: PromptCompletionRecord[] }
    | { kind: "prompts"; records: PromptRecord[] }
  );

/** Options of {@link validateAll}. */
export interface ValidateOptions {
  /** Name used in messages. Default `"<data>"`. */
  file?: string;
  /** When given, every token id must be below it. */
  vocabSize?: number;
  /** How many errors to collect before giving up on listing more. Default 20. */
  maxErrors?: number;
  /**
   * The expected kind; detected from the file when absent. `"prompts"` reads the prompts of any file
   * (e.g. the prompts of a pairs file, for evaluation).
   */
  kind?: DataKind;
  /**
   * Validate for scoring rather than training: reward groups may omit `rewards` (or hold nulls,
   * as `generate --prompts` writes them), and groups may differ in size (at least 1 completion).
   * Such groups come back with `rewards: []`.
   */
  forScoring?: boolean;
}

const TEXT_FIELDS: Record<DataKind, string[]> = {
  pairs: ["prompt", "chosen", "rejected"],
  groups: ["prompt", "completions", "rewards"],
  prompt_completion: ["prompt", "completion"],
  prompts: ["prompt"],
};

/** Field names of a format, in the order they are checked (`rewards` has no `_ids` form). */
export function formatFields(format: Pick<DataFormat, "kind" | "tokenized">): string[] {
  const names = TEXT_FIELDS[format.kind];
  return format.tokenized ? names.map((n) => (n === "rewards" ? n : `${n}_ids`)) : names;
}

const KIND_NAMES: Record<DataKind, string> = {
  pairs: "pairs",
  groups: "reward-groups",
  prompt_completion: "prompt-completion",
  prompts: "prompts",
};

/** A human name of a format, e.g. `pairs format ({"prompt","chosen","rejected"})`. */
export function describeFormat(format: DataFormat): string {
  const fields = formatFields(format).map((f) => JSON.stringify(f)).join(",");
  return format.conversational
    ? `conversational ${KIND_NAMES[format.kind]} format ({${fields}} as message lists)`
    : `${KIND_NAMES[format.kind]} format ({${fields}})`;
}

type Json = Record<string, unknown>;

function has(o: Json, ...keys: string[]): boolean {
  return keys.some((k) => Object.hasOwn(o, k));
}

/**
 * The kind a record's keys point to, or null when it has none of the distinguishing keys (a record
 * with only `prompt` is "prompts" only when the whole file is).
 */
function strongKind(o: Json): DataKind | null {
  if (has(o, "chosen", "rejected", "chosen_ids", "rejected_ids")) return "pairs";
  if (has(o, "completions", "completions_ids", "rewards")) return "groups";
  if (has(o, "completion", "completion_ids")) return "prompt_completion";
  return null;
}

/** Whether a record of a kind uses token ids: any of the kind's `_ids` fields present wins. */
function isTokenized(o: Json, kind: DataKind): boolean {
  return has(o, ...formatFields({ kind, tokenized: true }).filter((f) => f !== "rewards"));
}

function formatOf(o: Json, kind: DataKind): DataFormat {
  const tokenized = isTokenized(o, kind);
  return { kind, tokenized, conversational: !tokenized && isConversational(o) };
}

/**
 * Detects the format of one record from its keys, or null when it has no recognized field.
 * Use {@link validateAll} for files: it detects once per file and checks that every line agrees.
 */
export function detectFormat(value: unknown): DataFormat | null {
  if (!isObject(value)) return null;
  const kind = strongKind(value) ?? (has(value, "prompt", "prompt_ids") ? "prompts" : null);
  if (kind === null) return null;
  const tokenized = isTokenized(value, kind);
  return { kind, tokenized, conversational: !tokenized && isConversational(value) };
}

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A list whose first item is an object with a role: what TRL's `is_conversational` looks for. */
function isMessageList(v: unknown): boolean {
  return Array.isArray(v) && v.length > 0 && isObject(v[0]) && has(v[0], "role");
}

/** Whether a record's text fields hold message lists (TRL's conversational format). */
function isConversational(o: Json): boolean {
  if (["prompt", "chosen", "rejected", "completion"].some((k) => isMessageList(o[k]))) return true;
  return Array.isArray(o.completions) && o.completions.some(isMessageList);
}

function sameMessage(a: ChatMessage, b: ChatMessage): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The longest common leading run of messages of several conversations (TRL's `extract_prompt`). */
export function sharedPrefixLength(conversations: readonly ChatMessage[][]): number {
  let n = 0;
  const shortest = Math.min(...conversations.map((c) => c.length));
  while (n < shortest && conversations.every((c) => sameMessage(c[n], conversations[0][n]))) n++;
  return n;
}

/** Collects the errors and warnings of one line. */
class LineCheck {
  errors: DataError[] = [];
  warnings: DataWarning[] = [];
  constructor(
    readonly file: string,
    readonly line: number | null,
    readonly vocabSize: number | undefined,
    readonly unit: DataUnit = "line",
  ) {}

  at(field: string | null): DataLocation {
    return { file: this.file, line: this.line, field, unit: this.unit };
  }
  error(field: string | null, detail: string): void {
    this.errors.push(new DataError(this.at(field), detail));
  }
  warn(field: string | null, detail: string): void {
    this.warnings.push(dataWarning(this.at(field), detail));
  }

  /** A text field: a string; a completion must not be empty. */
  text(v: unknown, field: string, completion: boolean): string | undefined {
    if (typeof v !== "string") {
      this.error(field, `expected a string, got ${jsonTypeName(v)}`);
      return undefined;
    }
    if (completion && v === "") {
      this.error(field, "empty completion: a completion needs at least one token");
      return undefined;
    }
    return v;
  }

  /**
   * A message list: objects with a string `role` and a `content` that is a string, a list of
   * content parts (`{"type": ...}`), or null beside `tool_calls`. Not empty.
   */
  messages(v: unknown, field: string): ChatMessage[] | undefined {
    if (!Array.isArray(v)) {
      this.error(field, `expected a list of {"role", "content"} messages, got ${jsonTypeName(v)}`);
      return undefined;
    }
    if (v.length === 0) {
      this.error(field, "empty conversation: expected at least one message");
      return undefined;
    }
    const before = this.errors.length;
    v.forEach((m, i) => {
      const at = `${field}[${i}]`;
      if (!isObject(m)) {
        this.error(at, `expected a {"role", "content"} message, got ${jsonTypeName(m)}`);
        return;
      }
      if (typeof m.role !== "string" || m.role === "") {
        this.error(
          `${at}.role`,
          m.role === undefined ? "missing" : `expected a non-empty string, got ${jsonTypeName(m.role)}`,
        );
      }
      const c = m.content;
      const okContent = typeof c === "string" ||
        (Array.isArray(c) && c.every((p) => isObject(p) && typeof p.type === "string")) ||
        (c === null && Array.isArray(m.tool_calls));
      if (!okContent) {
        this.error(
          `${at}.content`,
          c === undefined
            ? "missing"
            : `expected a string or a list of {"type", ...} content parts, got ${jsonTypeName(c)}`,
        );
      }
    });
    return this.errors.length > before ? undefined : v as ChatMessage[];
  }

  /** An id field: an array of non-negative integers below the vocabulary size, not empty. */
  ids(v: unknown, field: string, completion: boolean): number[] | undefined {
    if (!Array.isArray(v)) {
      this.error(field, `expected an array of token ids, got ${jsonTypeName(v)}`);
      return undefined;
    }
    const before = this.errors.length;
    for (let i = 0; i < v.length; i++) {
      const id = v[i];
      if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 0) {
        const got = typeof id === "number" ? String(id) : jsonTypeName(id);
        this.error(`${field}[${i}]`, `expected a non-negative integer token id, got ${got}`);
      } else if (this.vocabSize !== undefined && id >= this.vocabSize) {
        this.error(`${field}[${i}]`, `token id ${id} is out of the vocabulary (size ${this.vocabSize})`);
      }
    }
    if (this.errors.length > before) return undefined;
    if (v.length === 0) {
      this.error(
        field,
        completion
          ? "empty completion: a completion needs at least one token"
          : "empty prompt: the first completion token needs at least one token before it (put the BOS token here if the model has one)",
      );
      return undefined;
    }
    return v as number[];
  }

  segment(o: Json, name: string, format: DataFormat, completion: boolean): Segment | undefined {
    if (format.tokenized) return this.ids(o[`${name}_ids`], `${name}_ids`, completion);
    return format.conversational ? this.messages(o[name], name) : this.text(o[name], name, completion);
  }
}

function sameSegment(a: Segment, b: Segment): boolean {
  if (typeof a === "string" || typeof b === "string") return a === b;
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The implicit-prompt variant: the prompt is the conversations' shared leading messages, and each
 * completion what follows it. Records an error (naming `field`) when nothing is shared or nothing
 * is left of a completion.
 */
function splitImplicitPrompt(
  conversations: ChatMessage[][],
  fields: string[],
  check: LineCheck,
): { prompt: ChatMessage[]; completions: ChatMessage[][] } | undefined {
  const n = sharedPrefixLength(conversations);
  if (n === 0) {
    check.error(
      fields[0],
      `no "prompt" and the conversations share no leading message: give "prompt" (a message list), or start every conversation with the same turns`,
    );
    return undefined;
  }
  const completions = conversations.map((c) => c.slice(n));
  const empty = completions.findIndex((c) => c.length === 0);
  if (empty >= 0) {
    check.error(
      fields[empty],
      `nothing is left once the shared prompt (${n} message${
        n > 1 ? "s" : ""
      }) is removed: a completion needs at least one message of its own`,
    );
    return undefined;
  }
  return { prompt: conversations[0].slice(0, n), completions };
}

type AnyRecord = PairRecord | GroupRecord | PromptCompletionRecord | PromptRecord;

/** Validates one record against the file's format; returns it, or undefined when `check` got errors. */
function checkRecord(
  o: Json,
  format: DataFormat,
  check: LineCheck,
  groupSize: number | null,
  forScoring = false,
): AnyRecord | undefined {
  const { kind, tokenized } = format;
  // Conversational pairs and groups may leave the prompt implicit in their completions.
  const implicit = format.conversational && (kind === "pairs" || kind === "groups") && !isMessageList(o.prompt);
  const missing = formatFields(format).filter((f) =>
    !Object.hasOwn(o, f) && !(forScoring && f === "rewards") && !(implicit && f === "prompt")
  );
  if (missing.length > 0) {
    const needs = formatFields(format).map((f) => JSON.stringify(f)).join(", ");
    for (const f of missing) check.error(f, `missing (a ${KIND_NAMES[kind]} record needs ${needs})`);
    return undefined;
  }
  const line = check.line!;
  let prompt = implicit ? undefined : check.segment(o, "prompt", format, false);
  if (kind === "prompts") return prompt === undefined ? undefined : { line, prompt };
  if (kind === "prompt_completion") {
    const completion = check.segment(o, "completion", format, true);
    return prompt === undefined || completion === undefined ? undefined : { line, prompt, completion };
  }
  if (kind === "pairs") {
    let chosen = check.segment(o, "chosen", format, true);
    let rejected = check.segment(o, "rejected", format, true);
    if (chosen === undefined || rejected === undefined) return undefined;
    if (sameSegment(chosen, rejected)) {
      check.warn(tokenized ? "rejected_ids" : "rejected", "identical to chosen: this pair carries no preference");
    }
    if (implicit) {
      const split = splitImplicitPrompt([chosen, rejected] as ChatMessage[][], ["chosen", "rejected"], check);
      if (split === undefined) return undefined;
      [prompt, chosen, rejected] = [split.prompt, split.completions[0], split.completions[1]];
    }
    if (prompt === undefined) return undefined;
    return { line, prompt, chosen, rejected };
  }
  // groups
  const cField = tokenized ? "completions_ids" : "completions";
  const cs = o[cField];
  let completions: Segment[] | undefined;
  if (!Array.isArray(cs)) {
    check.error(cField, `expected an array of ${tokenized ? "token-id arrays" : "strings"}, got ${jsonTypeName(cs)}`);
  } else if (cs.length < (forScoring ? 1 : 2)) {
    check.error(cField, `a reward group needs at least ${forScoring ? 1 : 2} completions, got ${cs.length}`);
  } else if (!forScoring && groupSize !== null && cs.length !== groupSize) {
    check.error(
      cField,
      `expected ${groupSize} completions like the first group (every group of a file must have the same number), got ${cs.length}`,
    );
  } else {
    const before = check.errors.length;
    const items = cs.map((c, i) =>
      tokenized
        ? check.ids(c, `${cField}[${i}]`, true)
        : format.conversational
        ? check.messages(c, `${cField}[${i}]`)
        : check.text(c, `${cField}[${i}]`, true)
    );
    if (check.errors.length === before) completions = items as Segment[];
    if (completions !== undefined && implicit) {
      const split = splitImplicitPrompt(
        completions as ChatMessage[][],
        completions.map((_, i) => `${cField}[${i}]`),
        check,
      );
      if (split === undefined) completions = undefined;
      else [prompt, completions] = [split.prompt, split.completions];
    }
  }
  const rs = o.rewards;
  let rewards: number[] | undefined;
  if (forScoring && (rs === undefined || (Array.isArray(rs) && rs.every((r) => r === null)))) {
    rewards = []; // rewards are not needed to score, and may be left for a reward model to fill
  } else if (!Array.isArray(rs)) {
    check.error("rewards", `expected an array of numbers, got ${jsonTypeName(rs)}`);
  } else {
    const before = check.errors.length;
    rs.forEach((r, i) => {
      if (typeof r !== "number" || !Number.isFinite(r)) {
        check.error(`rewards[${i}]`, `expected a finite number, got ${jsonTypeName(r)}`);
      }
    });
    if (Array.isArray(cs) && rs.length !== cs.length) {
      check.error("rewards", `expected ${cs.length} rewards (one per completion), got ${rs.length}`);
    }
    if (check.errors.length === before) rewards = rs as number[];
  }
  if (prompt === undefined || completions === undefined || rewards === undefined) return undefined;
  return { line, prompt, completions, rewards };
}

/**
 * Validates one conversation (a JSON list of `{role, content}` messages, as `tokenize --chat` and
 * `generate --chat` read), throwing a {@link DataError} that names `file` and the message field.
 */
export function validateMessages(value: unknown, file: string): ChatMessage[] {
  const check = new LineCheck(file, null, undefined);
  const messages = check.messages(value, "messages");
  throwCollected(file, check.errors);
  return messages!;
}

/**
 * Parses and validates a whole JSONL file. Detects the format from the first line that shows it and
 * checks that every line agrees. Collects up to `maxErrors` errors (default 20) so the user sees many
 * problems at once, then throws one {@link DataError} listing them (its `errors` holds them). Returns
 * the records and the warnings (e.g. chosen identical to rejected).
 */
export function validateAll(text: string, options: ValidateOptions = {}): Dataset {
  const file = options.file ?? "<data>";
  return validateRows(parseJsonlRows(text, file), file, "line", options);
}

/**
 * Validates records given as a list rather than a file (an app's own objects, or the records of a
 * stream collected into a list), exactly as {@link validateAll} validates the lines of a JSONL
 * file: the same formats, checks, warnings and collected errors, which name the record by its
 * 0-based index and the field (`data[3]: field "chosen": expected a string, got number`, where
 * `data` is `options.file`, default `"data"`). The records' `line` is their index.
 */
export function validateRecords(
  values: readonly unknown[],
  options: ValidateOptions & {
    /** The index of `values[0]` in a longer list (records that arrive one by one). Default 0. */
    firstIndex?: number;
  } = {},
): Dataset {
  const file = options.file ?? "data";
  if (!Array.isArray(values)) {
    throw new DataError({ file, line: null, field: null }, `expected a list of records, got ${jsonTypeName(values)}`);
  }
  const first = options.firstIndex ?? 0;
  return validateRows(values.map((value, i) => ({ line: first + i, value })), file, "record", options);
}

/** The checks of {@link validateAll} over parsed rows; `unit` says whether rows are lines or records. */
function validateRows(rows: readonly JsonlRow[], file: string, unit: DataUnit, options: ValidateOptions): Dataset {
  const maxErrors = options.maxErrors ?? 20;
  const errors: DataError[] = [];
  let errorCount = 0;
  const addErrors = (es: DataError[]) => {
    errorCount += es.length;
    for (const e of es) if (errors.length < maxErrors) errors.push(e);
  };

  // The file's format: from the first line whose keys show it; "prompts" only when no line shows more.
  let format: DataFormat | null = null;
  let formatLine = 0;
  for (const row of rows) {
    if (row.error || !isObject(row.value)) continue;
    const kind = options.kind ?? strongKind(row.value);
    if (kind !== null) {
      format = formatOf(row.value, kind);
      formatLine = row.line;
      break;
    }
  }
  if (format === null) {
    for (const row of rows) {
      if (row.error || !isObject(row.value) || !has(row.value, "prompt", "prompt_ids")) continue;
      format = formatOf(row.value, "prompts");
      formatLine = row.line;
      break;
    }
  }

  const records: AnyRecord[] = [];
  const warnings: DataWarning[] = [];
  let groupSize: number | null = null;
  for (const row of rows) {
    if (row.error) {
      addErrors([row.error]);
      continue;
    }
    const check = new LineCheck(file, row.line, options.vocabSize, unit);
    const o = row.value;
    if (!isObject(o)) {
      check.error(null, `expected a JSON object per ${unit}, got ${jsonTypeName(o)}`);
      addErrors(check.errors);
      continue;
    }
    if (isMessageList(o.messages) && strongKind(o) === null) {
      check.error(
        "messages",
        'a {"messages"} record is a single conversation (supervised fine-tuning data); preference training needs {"prompt","chosen","rejected"} or {"chosen","rejected"} with message lists',
      );
      addErrors(check.errors);
      continue;
    }
    if (format === null) {
      const keys = Object.keys(o).map((k) => JSON.stringify(k)).join(", ") || "none";
      check.error(
        null,
        `cannot tell the data format: expected {"prompt","chosen","rejected"} (pairs), {"prompt","completions","rewards"} (reward groups), {"prompt","completion"} or {"prompt"}, or their *_ids forms; the ${unit} has fields ${keys}`,
      );
      addErrors(check.errors);
      continue;
    }
    // Any record has a prompt, so reading prompts out of a pairs or groups file is fine.
    const kind = options.kind === "prompts" ? null : strongKind(o);
    if (kind !== null && kind !== format.kind) {
      const mine = formatOf(o, kind);
      check.error(
        null,
        `the record is in the ${describeFormat(mine)} but ${unit} ${formatLine} is in the ${describeFormat(format)}: ${
          sameFormat(unit)
        }`,
      );
      addErrors(check.errors);
      continue;
    }
    const tokenized = isTokenized(o, format.kind);
    const conversational = !tokenized && isConversational(o);
    if (tokenized === format.tokenized && conversational !== format.conversational) {
      check.error(
        null,
        `the record ${conversational ? "holds message lists" : "holds plain text"} (${
          describeFormat({ ...format, conversational })
        }) but ${unit} ${formatLine} ${format.conversational ? "holds message lists" : "holds plain text"}: ${
          sameFormat(unit)
        }`,
      );
      addErrors(check.errors);
      continue;
    }
    if (tokenized !== format.tokenized) {
      check.error(
        null,
        `the record ${tokenized ? "uses token ids" : "uses text"} (${
          describeFormat({ ...format, tokenized })
        }) but ${unit} ${formatLine} ${format.tokenized ? "uses token ids" : "uses text"}: ${sameFormat(unit)}`,
      );
      addErrors(check.errors);
      continue;
    }
    const record = checkRecord(o, format, check, groupSize, options.forScoring);
    addErrors(check.errors);
    warnings.push(...check.warnings);
    if (record !== undefined) {
      records.push(record);
      if (format.kind === "groups" && groupSize === null) groupSize = (record as GroupRecord).completions.length;
    }
  }

  if (errorCount === 0 && records.length === 0) {
    const what = unit === "record" ? "the list is empty" : "the file is empty";
    addErrors([new DataError({ file, line: null, field: null }, `no records: ${what}`)]);
  }
  throwCollected(file, errors, errorCount);
  return {
    file,
    kind: format!.kind,
    tokenized: format!.tokenized,
    conversational: format!.conversational,
    warnings,
    records,
    unit,
  } as Dataset;
}

function sameFormat(unit: DataUnit): string {
  return unit === "record" ? "all records of a list must use one format" : "all lines of a file must use one format";
}

/** Options of {@link readDataset}. */
export interface ReadDatasetOptions extends Omit<ValidateOptions, "file"> {
  /** Where to read from. Default: local files. */
  files?: FileSource;
}

/** Reads and validates a JSONL file (see {@link validateAll}); messages name `path`. */
export async function readDataset(path: string, options: ReadDatasetOptions = {}): Promise<Dataset> {
  const files = options.files ?? localFiles();
  return validateAll(await files.readText(path), { ...options, file: path });
}
