/** The options shared by the online kill test and its child process. */

import { FX } from "./_trainer_support.ts";

/** A tuner with replay, checkpointing every update, on tiny-gpt2 (wasm). */
export const CHILD_OPTIONS = {
  model: `${FX}/tiny-gpt2`,
  updateEvery: 3,
  replay: 2,
  bufferSize: 4,
  lr: 5e-3,
  seed: 8,
  backend: "wasm" as const,
};
