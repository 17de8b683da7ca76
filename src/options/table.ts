/**
 * Declarative option tables: one entry per option gives its type, default, validation, help text,
 * command-line flag and whether it belongs to a run's resume fingerprint. The library resolves
 * options against a table ({@link resolveOptions}); the CLI derives its flags and help from the
 * same table (`src/cli/flags.ts`), so an option is added in exactly one place.
 *
 * Errors name the option: the library says `beta must be a positive number, got -1`, and the CLI,
 * which renders the same error through {@link describeError} with a flag namer, says
 * `--beta must be a positive number, got -1`.
 *
 * @example
 * ```ts
 * import { number, resolveOptions } from "./table.ts";
 * const TABLE = { beta: number({ default: 0.1, check: "positive", help: "β_π" }) };
 * const o = resolveOptions(TABLE, {}); // { beta: 0.1 }
 * console.log(o.beta);
 * ```
 *
 * @module
 */

/** How an option is present: required, defaulted, or unset (null) when not given. */
export type Presence = "required" | "default" | "unset";

/** The kinds of value a table knows how to parse from a flag and describe in help. */
export type OptionKind = "number" | "integer" | "string" | "boolean" | "list" | "choice" | "value";

/** One option of a table. `T` is its value type; `P` whether it is required, defaulted or unset. */
export interface OptionSpec<T = unknown, P extends Presence = Presence> {
  readonly kind: OptionKind;
  readonly presence: P;
  /** The default (null for `required` and `unset` options). */
  readonly default: T | null;
  /** One line of help; the default is appended from `default` or `defaultText`. */
  readonly help: string;
  /** The flag without its dashes; default: the key in kebab-case (`betaR` → `beta-r`). */
  readonly flag?: string;
  /** Placeholder after the flag in help: `F`, `N`, `DIR`; the choices for a choice. */
  readonly metavar: string;
  /** Help's text for the default when it is not a plain value (`2 * r`). */
  readonly defaultText?: string;
  /** True when a resumed run must use the same value (the option changes the result). */
  readonly fingerprint: boolean;
  /** For a list: the flag repeats (`--stop a --stop b`) instead of taking `a,b`. */
  readonly repeat?: boolean;
  /** The allowed values of a choice (a function so that registries can grow after import). */
  readonly choices?: () => readonly string[];
  /** Command-line text to value; throws {@link OptionError} naming the option. */
  parse(text: string, option: string): T;
  /** Why a value is invalid (a phrase such as `must be a positive number`), or null when valid. */
  check(value: unknown): string | null;
}

/** A table of options, keyed by the library's option names. */
export type OptionTable = Readonly<Record<string, OptionSpec>>;

/** The value type of one spec. */
export type OptionValue<S> = S extends OptionSpec<infer T, Presence> ? T : never;

type KeysWhere<Tbl, P extends Presence> = {
  [K in keyof Tbl]: Tbl[K] extends OptionSpec<unknown, P> ? K : never;
}[keyof Tbl];

/** What a caller passes: required options must be given, the rest may be left out. */
export type OptionsInput<Tbl> =
  & { [K in keyof Tbl]?: OptionValue<Tbl[K]> }
  & { [K in KeysWhere<Tbl, "required">]-?: OptionValue<Tbl[K]> };

/** What {@link resolveOptions} returns: every option present, `unset` ones as `null` when not given. */
export type ResolvedOptions<Tbl> = {
  [K in keyof Tbl]: Tbl[K] extends OptionSpec<infer T, "unset"> ? T | null : OptionValue<Tbl[K]>;
};

/** Maps an option name to the name shown to the user (`--beta-r` on the CLI, `betaR` in the library). */
export type Namer = (option: string) => string;

/** The library's namer: options by their own names. */
export const OPTION_NAMES: Namer = (option) => option;

/**
 * An error about options. Its message names options as the library does; {@link describe} renders
 * the same text with another namer (the CLI's flags).
 */
export class OptionError extends RangeError {
  /** The option at fault. */
  readonly option: string;
  readonly #render: (name: Namer) => string;

  /** `render` builds the text from a namer; a string reason is prefixed with the option's name. */
  constructor(option: string, render: string | ((name: Namer) => string)) {
    const r = typeof render === "string" ? (name: Namer) => `${name(option)} ${render}` : render;
    super(r(OPTION_NAMES));
    this.name = "OptionError";
    this.option = option;
    this.#render = r;
  }

  /** The message with options named by `name`. */
  describe(name: Namer): string {
    return this.#render(name);
  }
}

/** An error whose message names options and can be rendered for another audience (the CLI). */
export interface NamesOptions {
  describe(name: Namer): string;
}

/** The message of any error, with options named by `name` where the error knows them. */
export function describeError(e: unknown, name: Namer): string {
  const d = (e as Partial<NamesOptions> | null)?.describe;
  if (typeof d === "function") return d.call(e, name);
  return (e as Error)?.message ?? String(e);
}

/** The flag of an option, without dashes. */
export function flagOf(table: OptionTable, option: string): string {
  return table[option]?.flag ?? option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** `got …` in messages and defaults in help: numbers and identifiers as they are, anything else as JSON. */
export function shown(v: unknown): string {
  // Small rates read better as 5e-4 than as 0.0005.
  if (typeof v === "number") return v !== 0 && Math.abs(v) < 0.01 ? v.toExponential() : String(v);
  if (typeof v === "string") return /^[\w.:/-]*$/.test(v) && v !== "" ? v : JSON.stringify(v);
  if (Array.isArray(v)) return JSON.stringify(v);
  return v === null || v === undefined ? String(v) : `a ${typeof v}`;
}

/**
 * Fills in defaults and checks every option of `table` in `input`; throws {@link OptionError}
 * naming the first bad option. Keys of `input` that the table does not list are ignored here (the
 * caller's own fields, such as a progress sink); a required option that is missing is an error.
 */
export function resolveOptions<Tbl extends OptionTable>(table: Tbl, input: OptionsInput<Tbl>): ResolvedOptions<Tbl> {
  const out: Record<string, unknown> = {};
  const given = input as Record<string, unknown>;
  for (const [key, spec] of Object.entries(table)) {
    const v = given[key];
    if (v === undefined || v === null) {
      if (spec.presence === "required") throw new OptionError(key, "is required");
      out[key] = spec.default;
      continue;
    }
    const why = spec.check(v);
    if (why !== null) throw new OptionError(key, `${why}, got ${shown(v)}`);
    out[key] = v;
  }
  return out as ResolvedOptions<Tbl>;
}

/** The entries of `table` named by `keys`, in table order (a command that takes some of a table's options). */
export function pickOptions<Tbl extends OptionTable, K extends keyof Tbl>(
  table: Tbl,
  keys: readonly K[],
): Pick<Tbl, K> {
  return Object.fromEntries(Object.entries(table).filter(([k]) => keys.includes(k as K))) as Pick<Tbl, K>;
}

/** The entries of `table` but those named by `keys` (a command to which some of a table's options do not apply). */
export function omitOptions<Tbl extends OptionTable, K extends keyof Tbl>(
  table: Tbl,
  keys: readonly K[],
): Omit<Tbl, K> {
  return Object.fromEntries(Object.entries(table).filter(([k]) => !keys.includes(k as K))) as Omit<Tbl, K>;
}

/** The values of the fingerprinted options, in table order (what a resume must match). */
export function fingerprintValues(
  table: OptionTable,
  resolved: Readonly<Record<string, unknown>>,
): [string, unknown][] {
  return Object.entries(table).filter(([, s]) => s.fingerprint).map(([k]) => [k, resolved[k] ?? null]);
}

// ---------------------------------------------------------------- builders

/** What every builder takes. */
interface Common {
  help: string;
  flag?: string;
  metavar?: string;
  defaultText?: string;
  /** Default true for options with a default or unset; false for required ones. */
  fingerprint?: boolean;
}

type Presenced<T> = { default: T } | { default: null } | { required: true };
type PresenceOf<O> = O extends { required: true } ? "required" : O extends { default: null } ? "unset" : "default";

function presence(o: { default?: unknown; required?: boolean }): Presence {
  if (o.required) return "required";
  return o.default === null || o.default === undefined ? "unset" : "default";
}

function spec<T, P extends Presence>(
  kind: OptionKind,
  o: Common & { default?: T | null; required?: boolean },
  metavar: string,
  parse: (text: string, option: string) => T,
  check: (v: unknown) => string | null,
  extra: Partial<OptionSpec<T, P>> = {},
): OptionSpec<T, P> {
  const p = presence(o) as P;
  return {
    kind,
    presence: p,
    default: o.default ?? null,
    help: o.help,
    flag: o.flag,
    metavar: o.metavar ?? metavar,
    defaultText: o.defaultText,
    fingerprint: o.fingerprint ?? p !== "required",
    parse,
    check,
    ...extra,
  };
}

function parseNumber(text: string, option: string): number {
  const x = Number(text);
  if (text.trim() === "" || Number.isNaN(x)) {
    throw new OptionError(option, `must be a number, got ${JSON.stringify(text)}`);
  }
  return x;
}

/** Numeric ranges with their wording. */
export type NumberCheck =
  | "any"
  | "positive"
  | "nonNegative"
  | "unitInterval"
  | { min?: number; max?: number; minExclusive?: boolean; maxExclusive?: boolean };

function numberCheck(c: NumberCheck = "any"): (v: unknown) => string | null {
  return (v) => {
    if (typeof v !== "number" || Number.isNaN(v)) return "must be a number";
    if (c === "any") return Number.isFinite(v) ? null : "must be a finite number";
    if (c === "positive") return v > 0 && Number.isFinite(v) ? null : "must be a positive number";
    if (c === "nonNegative") return v >= 0 && Number.isFinite(v) ? null : "must be >= 0";
    if (c === "unitInterval") return v > 0 && v < 1 ? null : "must be in (0, 1)";
    const lo = c.min ?? -Infinity, hi = c.max ?? Infinity;
    const ok = Number.isFinite(v) && (c.minExclusive ? v > lo : v >= lo) && (c.maxExclusive ? v < hi : v <= hi);
    if (ok) return null;
    const l = c.min === undefined ? "" : `${c.minExclusive ? ">" : ">="} ${c.min}`;
    const h = c.max === undefined ? "" : `${c.maxExclusive ? "<" : "<="} ${c.max}`;
    return `must be ${[l, h].filter(Boolean).join(" and ")}`;
  };
}

/** A real number. `check` names its range; `note` adds to the message (`(0 disables)`). */
export function number<O extends Common & Presenced<number> & { check?: NumberCheck; note?: string }>(
  o: O,
): OptionSpec<number, PresenceOf<O>> {
  const inner = numberCheck(o.check);
  const check = (v: unknown) => {
    const why = inner(v);
    return why !== null && o.note ? `${why} ${o.note}` : why;
  };
  return spec("number", o, "F", parseNumber, check);
}

/** An integer >= `min` (default 0). */
export function integer<O extends Common & Presenced<number> & { min?: number }>(
  o: O,
): OptionSpec<number, PresenceOf<O>> {
  const min = o.min ?? 0;
  const check = (
    v: unknown,
  ) => (typeof v === "number" && Number.isSafeInteger(v) && v >= min ? null : `must be an integer >= ${min}`);
  // Text that is a number is left to `check`, so the CLI and the library give the same message.
  const parse = (text: string, option: string) => {
    const x = Number(text);
    if (text.trim() === "" || Number.isNaN(x)) {
      throw new OptionError(option, `must be an integer >= ${min}, got ${JSON.stringify(text)}`);
    }
    return x;
  };
  return spec("integer", o, "N", parse, check);
}

/** A string (a path, a prompt). */
export function text<O extends Common & Presenced<string>>(o: O): OptionSpec<string, PresenceOf<O>> {
  return spec("string", o, "STR", (t) => t, (v) => (typeof v === "string" ? null : "must be a string"));
}

/** A switch: present on the command line means true. */
export function flag(o: Common & { default?: boolean }): OptionSpec<boolean, "default"> {
  return spec<boolean, "default">(
    "boolean",
    { ...o, default: o.default ?? false },
    "",
    () => true,
    (v) => (typeof v === "boolean" ? null : "must be true or false"),
  );
}

/** A list of strings: `a,b,c` on the command line, or a repeated flag with `repeat`. */
export function list<O extends Common & Presenced<string[]> & { repeat?: boolean }>(
  o: O,
): OptionSpec<string[], PresenceOf<O>> {
  const check = (v: unknown) =>
    Array.isArray(v) && v.every((s) => typeof s === "string")
      ? (v.length > 0 || o.repeat ? null : "must name at least one entry")
      : "must be a list of strings";
  const parse = (t: string) => t.split(",").map((s) => s.trim()).filter(Boolean);
  return spec("list", o, o.repeat ? "STR" : "a,b,...", parse, check, { repeat: o.repeat });
}

/**
 * One of a set of strings. `values` may be a function, so that the set can come from a registry
 * that grows after this table is built (the runtime's backend names).
 */
export function choice<const C extends string, O extends Common & Presenced<C>>(
  values: readonly C[] | (() => readonly C[]),
  o: O,
): OptionSpec<C, PresenceOf<O>> {
  const all = typeof values === "function" ? values : () => values;
  const check = (v: unknown) =>
    typeof v === "string" && (all() as readonly string[]).includes(v) ? null : `must be one of ${all().join(", ")}`;
  // No metavar of its own: help lists the choices as they are when it is printed.
  return spec("choice", o, "", (t) => t as C, check, { choices: all });
}

/** What {@link value} takes besides the common fields. */
interface ValueParts<T> {
  /** Why a value is invalid, or null. */
  check: (v: unknown) => string | null;
  /** Command-line text to value (default: the text itself). */
  parse?: (text: string) => T;
}

/**
 * A value of a type the other builders do not cover (a path or an already loaded object): the
 * command line gives its string form, `check` accepts the rest.
 */
export function value<T>(o: Common & { required: true } & ValueParts<T>): OptionSpec<T, "required">;
export function value<T>(o: Common & { default: null } & ValueParts<T>): OptionSpec<T, "unset">;
export function value<T>(o: Common & { default: T } & ValueParts<T>): OptionSpec<T, "default">;
export function value<T>(o: Common & { default?: T | null; required?: boolean } & ValueParts<T>): OptionSpec<T> {
  return spec<T, Presence>("value", o, "STR", (t) => (o.parse ? o.parse(t) : t as T), o.check);
}
