/**
 * Option specs shared by several tables (the trainer's, and the `score`, `generate` and `doctor`
 * commands'), so that each is defined once.
 *
 * @module
 */

import { BACKEND_PREFERENCES } from "../runtime/backend.ts";
import { choice } from "./table.ts";

/**
 * `backend`: checked against the runtime's list of backend names (src/runtime/backend.ts), so a
 * backend added there is accepted by every table and flag at once.
 */
export function backendOption(help = "where graphs run: auto picks WebGPU on a hardware adapter, else wasm") {
  return choice(() => BACKEND_PREFERENCES, { default: "auto", help, fingerprint: false });
}
