/**
 * Command-line flags from an option table (src/options/table.ts): parsing with node's `parseArgs`,
 * `--help` text, and error messages that name flags (`--beta must be a positive number, got -1`).
 * Every command builds its flags this way, so a table entry is all an option needs.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  describeError,
  flagOf,
  type Namer,
  OptionError,
  type OptionsInput,
  type OptionSpec,
  type OptionTable,
  type ResolvedOptions,
  resolveOptions,
  shown,
} from "../options/table.ts";

/** An error in the command line that the usage text helps with (a missing required flag). */
export class UsageError extends OptionError {}

/** Options as flags: `betaR` → `--beta-r`. */
export function flagNamer(table: OptionTable): Namer {
  return (option) => (option in table ? `--${flagOf(table, option)}` : option);
}

/** An error's message with options named as flags of `table`. */
export function flagMessage(e: unknown, table: OptionTable): string {
  return describeError(e, flagNamer(table));
}

/**
 * `--lr -1` → `--lr=-1`: node's parseArgs refuses an option value that starts with a dash, which
 * would hide the real problem (a negative number) behind an "ambiguous argument" message.
 */
function joinNegativeValues(argv: readonly string[], valued: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], next = argv[i + 1];
    if (valued.has(a) && next !== undefined && /^-(\d|\.\d|inf)/i.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** What {@link parseFlags} returns: the options given on the command line. */
export type ParsedFlags<Tbl> = Partial<OptionsInput<Tbl>>;

/**
 * Parses `argv` against `table`: flag text becomes typed values (checked by the table when the
 * library resolves them). Throws node's error for unknown flags, an {@link OptionError} naming the
 * option for unparsable values, and a {@link UsageError} for a missing required flag unless
 * `requireAll` is false (e.g. with `--help`).
 */
export function parseFlags<Tbl extends OptionTable>(
  table: Tbl,
  argv: readonly string[],
  { requireAll = true }: { requireAll?: boolean } = {},
): ParsedFlags<Tbl> {
  const options: Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }> = {};
  const valued = new Set<string>();
  for (const [key, s] of Object.entries(table)) {
    const f = flagOf(table, key);
    options[f] = s.kind === "boolean" ? { type: "boolean" } : { type: "string", multiple: s.repeat === true };
    if (s.kind !== "boolean") valued.add(`--${f}`);
    if (key === "help") options[f].short = "h";
  }
  const { values } = parseArgs({ args: joinNegativeValues(argv, valued), options, strict: true });
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(table)) {
    const raw = (values as Record<string, string | boolean | string[] | undefined>)[flagOf(table, key)];
    if (raw === undefined) continue;
    if (s.kind === "boolean") out[key] = raw;
    else if (Array.isArray(raw)) out[key] = raw;
    else out[key] = s.parse(raw as string, key);
  }
  if (requireAll && !out.help) {
    for (const [key, s] of Object.entries(table)) {
      if (s.presence === "required" && out[key] === undefined) throw new UsageError(key, "is required");
    }
  }
  return out as ParsedFlags<Tbl>;
}

function defaultOf(s: OptionSpec): string {
  if (s.defaultText !== undefined) return ` (default ${s.defaultText})`;
  if (s.presence !== "default" || s.kind === "boolean") return "";
  return ` (default ${Array.isArray(s.default) ? s.default.join(",") : shown(s.default)})`;
}

/** `--help`: the usage line, then one line per flag with its help and default. */
export function helpText(usage: string, table: OptionTable): string {
  const rows = Object.entries(table).map(([key, s]) => {
    const meta = s.kind === "boolean" ? "" : ` ${s.metavar || (s.choices?.() ?? []).join("|")}`;
    const repeat = s.repeat ? " (repeatable)" : "";
    return [`--${flagOf(table, key)}${meta}`, `${s.help}${repeat}${defaultOf(s)}`];
  });
  const width = Math.min(26, Math.max(...rows.map(([f]) => f.length)) + 2);
  const lines = rows.map((
    [f, h],
  ) => (f.length + 2 > width ? `  ${f}\n  ${"".padEnd(width)}${h}` : `  ${f.padEnd(width)}${h}`));
  return `${usage}\n\n${lines.join("\n")}`;
}

/**
 * Parses and resolves a command's flags: defaults filled in, every value checked by the table.
 * Returns "help" when `--help` was given (the table must have a `help` flag for that).
 */
export function readFlags<Tbl extends OptionTable>(table: Tbl, argv: readonly string[]): ResolvedOptions<Tbl> | "help" {
  const parsed = parseFlags(table, argv) as Record<string, unknown>;
  if (parsed.help === true) return "help";
  return resolveOptions(table, parsed as OptionsInput<Tbl>);
}
