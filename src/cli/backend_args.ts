/**
 * `--backend` and `--threads`, shared by the commands that run graphs (train, score, generate,
 * demo, doctor), so their help and errors say the same thing.
 *
 * @module
 */

import type { BackendPreference } from "../runtime/backend.ts";
import { BACKEND_CHOICES_TEXT, BACKEND_NAMES, isBackendName } from "../runtime/backends.ts";

/** The `--backend` values, for help texts: `auto | webgpu | wasm | native-cpu | native-webgpu`. */
export const BACKEND_CHOICES = ["auto", ...BACKEND_NAMES].join(" | ");

/** The help line of `--threads`. */
export const THREADS_HELP = "CPU threads: native-cpu intra-op threads (default: all cores), wasm threads (default 1)";

/** Parses `--backend` (default auto); RangeError naming the choices. */
export function parseBackend(v: string | undefined): BackendPreference {
  if (v === undefined) return "auto";
  if (v !== "auto" && !isBackendName(v)) {
    throw new RangeError(`--backend must be ${BACKEND_CHOICES_TEXT}, got ${v}`);
  }
  return v;
}

/** Parses `--threads` (undefined: the backend's default); RangeError unless a positive integer. */
export function parseThreads(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === "" || !Number.isInteger(n) || n < 1) {
    throw new RangeError(`--threads must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return n;
}
