/**
 * One ONNX graph holding all four losses, their gradients w.r.t. u (through `backward()`) and the
 * metrics, for a given dtype and (B, K). The hyper-parameters are either scalar graph inputs (one
 * session serves many property-test cases) or constants folded into the graph, as training passes
 * them (`buildPreferenceGraph` gives the emitters numbers): the EXO-pref emitter takes another branch
 * for a number ε (log1p(−ε) and log ε computed in float64 by JS) than for a graph ε (Log(1 − ε) in
 * the graph). Sessions are cached by (backend, dtype, B, K, constants).
 */

import { backward } from "../../src/autodiff/mod.ts";
import { type Dim, Graph, type Value } from "../../src/onnx/graph.ts";
import { serializeModel } from "../../src/onnx/serialize.ts";
import {
  emitDpoPref,
  emitDpoRw,
  emitExoPref,
  emitExoRw,
  emitGroupMetrics,
  emitPairMetrics,
} from "../../src/losses/mod.ts";
import { Engine, type GraphSession } from "../../src/runtime/session.ts";
import type { BackendName } from "../../src/runtime/ort.ts";
import type { Hyper } from "./_cases.ts";

/** Graph dims: B groups of K completions and P pairs; symbolic dims make one graph for every shape. */
export interface LossShape {
  b: Dim;
  k: Dim;
  p: Dim;
}

/**
 * Builds the all-losses graph; with `constants`, β_π, β_r and ε are numbers baked into it instead of
 * the `betaPi`, `betaR`, `eps` inputs.
 */
export function buildLossGraph(dtype: "float32" | "float64", { b, k, p }: LossShape, constants?: Hyper): Graph {
  const g = new Graph(`losses_${dtype}_${b}x${k}_${p}`);
  const u = g.input("u", dtype, [b, k]);
  const rewards = g.input("rewards", dtype, [b, k]);
  const logp = g.input("logp", dtype, [b, k]);
  const uw = g.input("uw", dtype, [p]);
  const ul = g.input("ul", dtype, [p]);
  const logpw = g.input("logpw", dtype, [p]);
  const logpl = g.input("logpl", dtype, [p]);
  const opts = constants ?? {
    betaPi: g.input("betaPi", dtype, []),
    betaR: g.input("betaR", dtype, []),
    eps: g.input("eps", dtype, []),
  };
  const betaPi = opts.betaPi;
  const out = (v: Value, name: string) => g.output(v, name);

  for (const [name, emit] of [["exo_pref", emitExoPref], ["dpo_pref", emitDpoPref]] as const) {
    const r = emit(uw, ul, opts);
    out(r.loss, `${name}.loss`);
    out(r.perExample, `${name}.per_example`);
    const [gw, gl] = backward(r.loss, [uw, ul]);
    out(gw, `${name}.grad_chosen`);
    out(gl, `${name}.grad_rejected`);
  }
  for (const [name, emit] of [["exo_rw", emitExoRw], ["dpo_rw", emitDpoRw]] as const) {
    const r = emit(u, rewards, opts);
    out(r.loss, `${name}.loss`);
    out(r.perExample, `${name}.per_example`);
    out(r.pF, `${name}.p_f`);
    out(r.pR, `${name}.p_r`);
    out(backward(r.loss, [u])[0], `${name}.grad`);
  }
  const pm = emitPairMetrics({ uChosen: uw, uRejected: ul, logpChosen: logpw, logpRejected: logpl }, { betaPi });
  for (const [name, v] of Object.entries(pm)) out(v, `pair:${name}`);
  const gm = emitGroupMetrics({ u, rewards, logp }, { betaPi });
  for (const [name, v] of Object.entries(gm)) out(v, `group:${name}`);
  return g;
}

/** Values fed to the all-losses graph (row-major `[B][K]` groups and `[B]` pairs). */
export interface LossFeeds {
  u: number[][];
  rewards: number[][];
  logp?: number[][];
  uw: number[];
  ul: number[];
  logpw?: number[];
  logpl?: number[];
  hyper: Hyper;
}

const engines = new Map<BackendName, Promise<Engine>>();
const sessions = new Map<string, Promise<GraphSession>>();

/** The engine of a backend (created once). */
export function engineFor(backend: BackendName): Promise<Engine> {
  let e = engines.get(backend);
  if (!e) engines.set(backend, e = Engine.create(backend));
  return e;
}

/** How a case passes β_π, β_r and ε: as graph inputs, or as constants (as training does). */
export type HyperMode = "inputs" | "constants";

/** A cached session of the all-losses graph (per hyper-parameter values when they are constants). */
export function lossSession(
  backend: BackendName,
  dtype: "float32" | "float64",
  shape: LossShape,
  constants?: Hyper,
): Promise<GraphSession> {
  const c = constants ? `${constants.betaPi}|${constants.betaR}|${constants.eps}` : "inputs";
  const key = `${backend}|${dtype}|${shape.b}|${shape.k}|${shape.p}|${c}`;
  let s = sessions.get(key);
  if (!s) {
    s = engineFor(backend).then((e) => e.createSession(serializeModel(buildLossGraph(dtype, shape, constants))));
    sessions.set(key, s);
  }
  return s;
}

/** Releases every cached session (call at the end of a test file). */
export async function releaseSessions(): Promise<void> {
  for (const s of sessions.values()) await (await s).release();
  sessions.clear();
}

/**
 * Runs the all-losses graph and returns every output as a float64 array. With `mode` "constants"
 * the hyper-parameters are built into a graph of their own (a session per distinct value: use few).
 */
export async function runLosses(
  backend: BackendName,
  dtype: "float32" | "float64",
  feeds: LossFeeds,
  shape: LossShape,
  mode: HyperMode = "inputs",
): Promise<Record<string, Float64Array>> {
  const e = await engineFor(backend);
  const constants = mode === "constants" ? feeds.hyper : undefined;
  const s = await lossSession(backend, dtype, shape, constants);
  const B = feeds.u.length, K = feeds.u[0].length;
  const arr = (x: number[]) => (dtype === "float64" ? Float64Array.from(x) : Float32Array.from(x));
  const zeros = (n: number) => Array(n).fill(0);
  const t = (x: number[], dims: number[]) => e.tensor(arr(x), dims);
  const hyper: Record<string, ReturnType<typeof t>> = constants ? {} : {
    betaPi: t([feeds.hyper.betaPi], []),
    betaR: t([feeds.hyper.betaR], []),
    eps: t([feeds.hyper.eps], []),
  };
  const res = await s.run({
    ...hyper,
    u: t(feeds.u.flat(), [B, K]),
    rewards: t(feeds.rewards.flat(), [B, K]),
    logp: t(feeds.logp?.flat() ?? zeros(B * K), [B, K]),
    uw: t(feeds.uw, [feeds.uw.length]),
    ul: t(feeds.ul, [feeds.ul.length]),
    logpw: t(feeds.logpw ?? zeros(feeds.uw.length), [feeds.uw.length]),
    logpl: t(feeds.logpl ?? zeros(feeds.uw.length), [feeds.uw.length]),
  });
  const out: Record<string, Float64Array> = {};
  for (const [name, v] of Object.entries(res)) out[name] = Float64Array.from(v.data as Float32Array);
  return out;
}
