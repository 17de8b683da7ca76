/**
 * The Worker entry of online tuning (`OnlineTuner.create({ worker: true })`): an
 * {@link OnlineLearner} in its own thread with its own ORT, driven by messages. In the app's thread
 * every ORT call waits for the one in progress, a training step included; here the step runs on
 * this Worker's ORT, so the app's thread keeps generating and answering requests during an update.
 *
 * Protocol (plain data, structured-cloned): the worker first posts `{type: "listening"}`; then
 * `{type: "init", init, wasmThreads}` → `{type: "ready", backend, threads}` (wasmThreads: the parent's
 * `configureRuntime` setting, applied before this Worker loads ORT);
 * `{type: "update", id, batch}` → `{type: "result", id, result}`; `{type: "release"}` →
 * `{type: "released"}`; any failure → `{type: "error", id, error: {name, message, stack}}`.
 *
 * @module
 */

import { configureRuntime } from "../runtime/ort.ts";
import { type LearnerInit, OnlineLearner } from "./online_learner.ts";
import type { LearnerBatch } from "./online_learner.ts";

/** A message to the worker. */
export type ToLearner =
  | { type: "init"; init: LearnerInit; wasmThreads: number }
  | { type: "update"; id: number; batch: LearnerBatch }
  | { type: "release" };

interface Scope {
  onmessage: ((e: MessageEvent<ToLearner>) => void) | null;
  postMessage(message: unknown): void;
}

const scope = globalThis as unknown as Scope;

// A Worker started from a file (Deno, Bun) has a `location` whose origin is the string "null", and
// ORT Web resolves its own module URL against that origin, which fails ("Invalid URL ... with base
// 'null'"). The main thread has no `location` there, and ORT resolves the URL alone: do the same here.
if (typeof location !== "undefined" && location.protocol === "file:") {
  Object.defineProperty(globalThis, "location", { value: undefined, configurable: true });
}
let learner: Promise<OnlineLearner> | null = null;

function fail(id: number | null, e: unknown): void {
  const err = e as Error;
  scope.postMessage({
    type: "error",
    id,
    error: { name: err?.name, message: err?.message ?? String(e), stack: err?.stack },
  });
}

scope.onmessage = async (e) => {
  const m = e.data;
  try {
    if (m.type === "init") {
      configureRuntime({ wasmThreads: m.wasmThreads });
      learner = OnlineLearner.create(m.init);
      const l = await learner;
      scope.postMessage({ type: "ready", backend: l.backend, threads: l.threads });
    } else if (m.type === "update") {
      if (!learner) throw new Error("update before init");
      const result = await (await learner).update(m.batch);
      scope.postMessage({ type: "result", id: m.id, result });
    } else if (m.type === "release") {
      if (learner) await (await learner).release();
      scope.postMessage({ type: "released" });
    }
  } catch (err) {
    fail(m.type === "update" ? m.id : null, err);
  }
};

// Messages posted to a module Worker before its module has been evaluated can be lost (seen in
// Deno when the parent posts right away): the parent waits for this before it sends `init`.
scope.postMessage({ type: "listening" });
