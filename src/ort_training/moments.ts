/**
 * A float32 mirror of what the runtime does with gradients between `runTrainStep` and the end of
 * `runOptimizerStep`, so the engine can report the gradient norm and checkpoint AdamW's moments
 * (ORT Web 1.19 exposes neither).
 *
 *   acc  = g_1 + ... + g_N                  (InPlaceAccumulatorV2: overwrite, then +=)
 *   ĝ    = acc · (1/N)                      (optimizer model, N > 1; N of this update)
 *   ĝ   ← ĝ · min(1, c / (‖ĝ‖ + 1e-6))      (optimizer model, c > 0)
 *   m   ← β1 m + (1 − β1) ĝ ;  v ← β2 v + (1 − β2) ĝ²     (AdamWOptimizer, Eigen float32)
 *
 * Every step is rounded to float32 in the order ORT's CPU kernels evaluate it (wasm has no fused
 * multiply-add, and float32 +, ×, ÷ computed in float64 then rounded are exact), so the moments
 * match the runtime's bit for bit while clipping is inactive. When clipping engages, the norm is
 * summed in another order than ORT's ReduceSum, so the coefficient (and the moments) may differ in
 * the last bit.
 *
 * @module
 */

const f = Math.fround;

/** Options of {@link UpdateMirror}. */
export interface MirrorOptions {
  kind: "adamw" | "sgd";
  /** Micro-batches per update (an update may take fewer, see {@link UpdateMirror.finishUpdate}). */
  gradAccum: number;
  maxGradNorm: number;
  beta1?: number;
  beta2?: number;
}

/** Accumulates micro-batch gradients and mirrors the optimizer's moments. */
export class UpdateMirror {
  readonly #acc = new Map<string, Float32Array>();
  readonly #m = new Map<string, Float32Array>();
  readonly #v = new Map<string, Float32Array>();
  readonly #o: Required<MirrorOptions>;
  #micro = 0;

  constructor(params: readonly { name: string; size: number }[], o: MirrorOptions) {
    this.#o = { beta1: 0.9, beta2: 0.999, ...o };
    for (const p of params) {
      this.#acc.set(p.name, new Float32Array(p.size));
      if (o.kind === "adamw") {
        this.#m.set(p.name, new Float32Array(p.size));
        this.#v.set(p.name, new Float32Array(p.size));
      }
    }
  }

  /** Adds one micro-batch's gradient of a parameter (`first`: the lazy reset overwrites). */
  add(name: string, grad: Float32Array, first: boolean): void {
    const acc = this.#acc.get(name);
    if (!acc) throw new Error(`UpdateMirror: unknown parameter ${name}`);
    if (grad.length !== acc.length) {
      throw new Error(`UpdateMirror: ${name} gradient has ${grad.length} values, not ${acc.length}`);
    }
    if (first) acc.set(grad);
    else for (let i = 0; i < acc.length; i++) acc[i] += grad[i];
  }

  /** Marks the end of one micro-batch. */
  endMicroBatch(): void {
    this.#micro++;
  }

  /**
   * Applies the update's gradient processing and moment update; returns the gradient norm before
   * clipping (of the mean over micro-batches, as the fused engine reports it). `expected`: the
   * micro-batches of this update (default `gradAccum`; an epoch's last update may take fewer).
   */
  finishUpdate(expected: number = this.#o.gradAccum): number {
    const n = this.#micro;
    this.#micro = 0;
    if (n !== expected) {
      throw new Error(`UpdateMirror: ${n} micro-batches in an update, expected ${expected}`);
    }
    const scale = f(1 / n);
    let sq = 0;
    for (const acc of this.#acc.values()) {
      // The optimizer model scales whenever it accumulates (1/1 is exact, so n = 1 needs nothing).
      if (n > 1) { for (let i = 0; i < acc.length; i++) acc[i] *= scale; }
      for (let i = 0; i < acc.length; i++) sq += acc[i] * acc[i];
    }
    const norm = Math.sqrt(sq);
    if (this.#o.kind !== "adamw") return norm;
    let coef = 1;
    if (this.#o.maxGradNorm > 0) coef = Math.min(1, f(f(this.#o.maxGradNorm) / f(f(norm) + f(1e-6))));
    const b1 = f(this.#o.beta1), b2 = f(this.#o.beta2);
    const c1 = f(1 - b1), c2 = f(1 - b2);
    for (const [name, acc] of this.#acc) {
      const m = this.#m.get(name)!, v = this.#v.get(name)!;
      for (let i = 0; i < acc.length; i++) {
        const g = coef === 1 ? acc[i] : f(acc[i] * coef);
        m[i] = f(b1 * m[i]) + f(c1 * g);
        v[i] = f(b2 * v[i]) + f(f(c2 * g) * g);
      }
    }
    return norm;
  }

  /** AdamW's moments (copies), by parameter name; empty for SGD. */
  moments(): Map<string, { m: Float32Array; v: Float32Array }> {
    const out = new Map<string, { m: Float32Array; v: Float32Array }>();
    for (const [name, m] of this.#m) out.set(name, { m: m.slice(), v: this.#v.get(name)!.slice() });
    return out;
  }

  /** Restores AdamW's moments (resume). */
  setMoments(name: string, m: Float32Array, v: Float32Array): void {
    const mm = this.#m.get(name), vv = this.#v.get(name);
    if (!mm || !vv) throw new Error(`UpdateMirror: no moments for ${name} (optimizer ${this.#o.kind})`);
    if (m.length !== mm.length || v.length !== vv.length) {
      throw new Error(`UpdateMirror: moments of ${name} have the wrong size`);
    }
    mm.set(m);
    vv.set(v);
  }
}
