/**
 * Option specs shared by several tables (the trainer's, and the `score`, `generate`, `tokenize`,
 * `doctor` and `export-trl` commands'), so that each is defined once.
 *
 * @module
 */

import {
  BACKEND_PREFERENCES,
  type BackendPreference,
  RUNTIME_BACKEND_PREFERENCES,
  type TrainBackendPreference,
} from "../runtime/backend.ts";
import { choice, integer, type OptionSpec, text } from "./table.ts";

const BACKEND_HELP =
  "where graphs run: auto picks WebGPU on a hardware adapter, else native-cpu where onnxruntime-node loads, else wasm";

/**
 * `backend` of a command that runs graphs on an inference engine (score, generate, doctor):
 * checked against the runtime's list of backend names (src/runtime/backend.ts), so a backend added
 * there is accepted by every table and flag at once.
 */
export function backendOption(help: string = BACKEND_HELP): OptionSpec<BackendPreference, "default"> {
  return choice(() => RUNTIME_BACKEND_PREFERENCES, { default: "auto", help, fingerprint: false });
}

/**
 * The trainer's `backend`: every name of {@link BACKEND_PREFERENCES}, the runtime's and
 * `ort-training` (ONNX Runtime's training API, src/ort_training/), which `auto` never picks.
 */
export function trainBackendOption(help: string): OptionSpec<TrainBackendPreference, "default"> {
  return choice(() => BACKEND_PREFERENCES, { default: "auto", help, fingerprint: false });
}

/**
 * `threads`: CPU threads of the backend that runs the graphs: onnxruntime-node's intra-op threads
 * on `native-cpu` (default: all cores), ORT Web's wasm threads on `wasm` (default 1; fixed once ORT
 * is loaded, see `configureRuntime`). Not fingerprinted: it changes speed, not results beyond
 * floating-point summation order, so a resume may use another count.
 */
export function threadsOption(): OptionSpec<number, "unset"> {
  return integer({
    default: null,
    min: 1,
    fingerprint: false,
    defaultText: "native-cpu: all cores, wasm: the cores, at most 4",
    help: "CPU threads: native-cpu intra-op threads, wasm threads",
  });
}

/** `--model`: a local model directory or a Hugging Face Hub id. */
export function modelOption(metavar: string = "M"): OptionSpec<string, "required"> {
  return text({ required: true, metavar, help: "model directory, or Hugging Face Hub id (org/name)" });
}

/**
 * `--revision`: the Hub branch, tag or commit of a `--model` given by Hub id (ignored for a
 * directory). Not fingerprinted: a resume must use the same model, and the model's identity (its
 * snapshot directory, named by commit) is in the fingerprint already.
 */
export function revisionOption(): OptionSpec<string, "default"> {
  return text({ default: "main", metavar: "REV", help: "Hub branch, tag or commit", fingerprint: false });
}
