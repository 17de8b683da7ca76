/**
 * Loads onnxruntime-node (the native ONNX Runtime: MLAS CPU kernels and a Dawn WebGPU EP) for the
 * `native-cpu` and `native-webgpu` backends, lazily and at most once.
 *
 * The package is optional (~290 MB unpacked): it is imported only when a native backend is asked
 * for or `auto` probes one, through a specifier bundlers cannot see, so browser bundles never
 * contain it and browsers never try to fetch it. When it cannot load, {@link NativeUnavailableError}
 * says why and what to do (install it, allow FFI in Deno, or use another backend).
 *
 * @module
 */

import type * as Ort from "onnxruntime-web";

/** The ORT module type (as in ort.ts, which imports this module, so not imported from there). */
type OrtModule = typeof Ort;

/** The npm package and version the native backends were built and tested against. */
export const NATIVE_PACKAGE = "onnxruntime-node";
export const NATIVE_VERSION = "1.30.0";

/** onnxruntime-node's module: the onnxruntime-common API plus its list of compiled-in EPs. */
export type NativeOrtModule = OrtModule & {
  listSupportedBackends(): { name: string; bundled: boolean }[];
};

/** Why onnxruntime-node did not load. */
export type NativeFailure = "no-native-runtime" | "not-installed" | "permission" | "platform" | "failed";

/** onnxruntime-node could not be loaded; `kind` says why and the message what to do. */
export class NativeUnavailableError extends Error {
  readonly kind: NativeFailure;
  constructor(kind: NativeFailure, message: string) {
    super(message);
    this.name = "NativeUnavailableError";
    this.kind = kind;
  }
}

/** How to install the package (also printed by errors and doctor). */
export const NATIVE_INSTALL_HINT =
  `npm install ${NATIVE_PACKAGE}@${NATIVE_VERSION} (set ONNXRUNTIME_NODE_INSTALL=skip with npm < 11 or offline: its postinstall only downloads CUDA libraries, which exo-tune does not use)`;

let loading: Promise<NativeOrtModule> | undefined;

/** True in Deno, Node and Bun: the runtimes that can load native add-ons. */
export function canLoadNativeAddons(): boolean {
  const g = globalThis as { Deno?: unknown; Bun?: unknown; process?: { versions?: { node?: string } } };
  // Deno and Bun both define process.versions.node; a browser or an edge worker has none of these.
  return g.Deno !== undefined || g.Bun !== undefined || typeof g.process?.versions?.node === "string";
}

/**
 * Imports onnxruntime-node once. Rejects with {@link NativeUnavailableError}; a failed load is
 * remembered (the same answer every time, as loading a native library twice is not possible).
 */
export function loadNativeOrt(logLevel: 0 | 1 | 2 | 3 | 4): Promise<NativeOrtModule> {
  loading ??= (async () => {
    if (!canLoadNativeAddons()) {
      throw new NativeUnavailableError(
        "no-native-runtime",
        "this runtime cannot load native add-ons (browsers and edge workers): use webgpu or wasm",
      );
    }
    let mod: NativeOrtModule;
    try {
      // A variable specifier: esbuild leaves it alone, so the browser bundle never includes it.
      const specifier = NATIVE_PACKAGE;
      const m = await import(specifier);
      mod = (m.default?.InferenceSession ? m.default : m) as NativeOrtModule;
    } catch (e) {
      throw classify(e);
    }
    mod.env.logLevel = (["verbose", "info", "warning", "error", "fatal"] as const)[logLevel];
    return mod;
  })();
  return loading;
}

/** Turns an import failure into the reason a user can act on. */
function classify(e: unknown): NativeUnavailableError {
  const msg = String((e as Error)?.message ?? e);
  const name = String((e as Error)?.name ?? "");
  if (name === "NotCapable" || name === "PermissionDenied" || /--allow-ffi|Requires ffi access/i.test(msg)) {
    return new NativeUnavailableError(
      "permission",
      `${NATIVE_PACKAGE} needs FFI permission in Deno: run with --allow-ffi (or -A) (${firstLine(msg)})`,
    );
  }
  if (/onnxruntime_binding\.node|napi-v6/.test(msg)) {
    return new NativeUnavailableError(
      "platform",
      `${NATIVE_PACKAGE} has no binary for this platform (${platformName()}): ${firstLine(msg)}`,
    );
  }
  const code = String((e as { code?: unknown })?.code ?? "");
  // Node: "Cannot find package ..."; Deno: 'Import "onnxruntime-node" not a dependency'; both ERR_MODULE_NOT_FOUND.
  if (code === "ERR_MODULE_NOT_FOUND" || /cannot find (module|package)|not a dependency|could not resolve/i.test(msg)) {
    return new NativeUnavailableError("not-installed", `${NATIVE_PACKAGE} is not installed: ${NATIVE_INSTALL_HINT}`);
  }
  return new NativeUnavailableError("failed", `${NATIVE_PACKAGE} failed to load: ${firstLine(msg)}`);
}

function firstLine(s: string): string {
  // Deno's messages carry ANSI colours and stack lines; one clean line is enough here.
  // deno-lint-ignore no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, "").split("\n")[0].trim();
}

function platformName(): string {
  const p = (globalThis as { process?: { platform?: string; arch?: string } }).process;
  return p ? `${p.platform}/${p.arch}` : "unknown";
}

/** CPU cores the OS offers this process (the default intra-op thread count of native-cpu). */
export async function defaultNativeThreads(): Promise<number> {
  const n = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency;
  if (typeof n === "number" && n >= 1) return n;
  // Node 20 has no navigator; native backends only run where node:os exists.
  const os = await import("node:os");
  return Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
}
