/**
 * Random test cases for every op builder in `src/onnx/ops.ts`: fast-check arbitraries that yield a
 * small graph-building function, its inputs, and the float64 reference answer
 * (`reference_ops.ts`). `op_check.ts` runs a case on an ONNX Runtime backend and compares.
 *
 * Shapes include broadcasting, size-1 and (where `dims` allows) size-0 axes. Values come from a
 * seeded generator in each op's safe domain and are rounded to float32, so float32 and float64
 * runs see the same inputs and the reference sees exactly what ORT sees.
 *
 * @module
 */

import fc from "fast-check";
import type { DType } from "../../src/onnx/dtype.ts";
import type { Value } from "../../src/onnx/graph.ts";
import * as op from "../../src/onnx/ops.ts";
import * as ref from "./reference_ops.ts";
import { type NdArray, sizeOfShape } from "./reference_ops.ts";

/** The shapes and types an arbitrary may use. */
export interface ArbOptions {
  /** Dimension sizes to draw from (repeat a size to make it likelier; include 0 for empty tensors). */
  dims: readonly number[];
  /** Largest rank of a generated tensor. */
  maxRank: number;
  /** Whether a case may make float64 tensors inside a float32 graph (Cast to float64). */
  float64: boolean;
}

/** wasm: ranks to 4, sizes 0..5 with 1 twice as likely. */
export const WASM_SHAPES: ArbOptions = { dims: [1, 2, 3, 1, 4, 0, 5], maxRank: 4, float64: true };
/**
 * WebGPU on lavapipe compiles a shader per new shape: few, small sizes. Non-empty, because ORT 1.30's
 * WebGPU EP fails on some empty tensors (MatMul [3,0] x [0,1]: "'buffer' is required in
 * 'GPUBufferBinding'"; Softmax of shape [0]: "divide by zero"). The WebGPU bundle has no float64
 * kernel at all (Cast to float64: "Provider type for Cast node ... is not set").
 */
export const WEBGPU_SHAPES: ArbOptions = { dims: [1, 3], maxRank: 3, float64: false };

/** Element kind of a case input: "float" takes the run's float type. */
export type InputKind = "float" | "int64" | "bool";

/** One input of a case. */
export interface CaseInput {
  kind: InputKind;
  value: NdArray;
}

/**
 * How close ORT must come to the reference. `exact`: bit-exact (data movement, comparisons, indices).
 * `arith`: rounding of a few float ops. `trans`: ORT's approximations of exp/log/tanh/erf and friends.
 * `scale` multiplies the absolute part (e.g. the number of summed terms times their magnitude).
 */
export interface Tolerance {
  kind: "exact" | "arith" | "trans";
  scale?: number;
}

/** A generated case: inputs, the builder call under test and the reference. */
export interface OpCase {
  /** The builder's name. */
  op: string;
  /** Shapes and parameters, for failure messages. */
  describe: string;
  inputs: CaseInput[];
  build(xs: Value[], dtype: DType): Value | Value[];
  reference(xs: NdArray[], dtype: DType): NdArray | NdArray[];
  tolerance: Tolerance;
}

/** A tested op: its case generator and where it can run. */
export interface OpSpec {
  name: string;
  arb(o: ArbOptions): fc.Arbitrary<OpCase>;
  /** true, or why ORT Web's wasm build cannot run it in float64. */
  float64: true | string;
  /** true, or why it is not tested on WebGPU. */
  webgpu: true | string;
}

/** Shows a failing case as `op(shapes and parameters)` instead of a dump of its closures. */
export function labelled(arb: fc.Arbitrary<OpCase>): fc.Arbitrary<OpCase> {
  return arb.map((c) => Object.assign(c, { [fc.toStringMethod]: () => `${c.op}(${c.describe})` }));
}

// ---------------------------------------------------------------- values

/** mulberry32: a tiny seeded generator in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Domain = (r: () => number) => number;
const uniform = (lo: number, hi: number): Domain => (r) => Math.fround(lo + (hi - lo) * r());
const ints = (lo: number, hi: number): Domain => (r) => lo + Math.floor(r() * (hi - lo + 1));
/** Magnitude in [lo, hi], either sign: safe denominators. */
const awayFromZero = (lo: number, hi: number): Domain => (r) => (r() < 0.5 ? -1 : 1) * uniform(lo, hi)(r);
/** Mostly continuous, sometimes small integers, so ties and equal values occur. */
const mixed: Domain = (r) => (r() < 0.3 ? ints(-2, 2)(r) : uniform(-3, 3)(r));
const STD = uniform(-3, 3);

function fill(shape: readonly number[], seed: number, domain: Domain): NdArray {
  const r = rng(seed);
  return ref.nd(shape, Array.from({ length: sizeOfShape(shape) }, () => domain(r)));
}

const float = (value: NdArray): CaseInput => ({ kind: "float", value });
const int64 = (value: NdArray): CaseInput => ({ kind: "int64", value });
const bool = (value: NdArray): CaseInput => ({ kind: "bool", value });

const ARITH: Tolerance = { kind: "arith" };
const TRANS: Tolerance = { kind: "trans" };
const EXACT: Tolerance = { kind: "exact" };

function maxAbs(...xs: NdArray[]): number {
  let m = 0;
  for (const x of xs) for (const v of x.data) m = Math.max(m, Math.abs(v));
  return m;
}

// ---------------------------------------------------------------- shapes

const seedArb = fc.nat();

function dimArb(o: ArbOptions, positive = false): fc.Arbitrary<number> {
  return fc.constantFrom(...o.dims.filter((d) => !positive || d > 0));
}

function shapeArb(o: ArbOptions, minRank = 0, maxRank = o.maxRank, positive = false): fc.Arbitrary<number[]> {
  return fc.array(dimArb(o, positive), { minLength: minRank, maxLength: Math.max(minRank, maxRank) });
}

/** A shape that broadcasts to `out`: some leading axes dropped, some axes set to 1. */
function operandOf(out: readonly number[]): fc.Arbitrary<number[]> {
  return fc.record({
    drop: fc.oneof({ weight: 2, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.nat({ max: out.length }) }),
    ones: fc.array(fc.boolean(), { minLength: out.length, maxLength: out.length }),
  }).map(({ drop, ones }) => out.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d)));
}

/** An axis of a rank, sometimes written negative. */
function axisArb(rank: number): fc.Arbitrary<number> {
  return fc.integer({ min: -rank, max: rank - 1 });
}

/** Writes each axis at random as a or a - rank (both name the same axis). */
function axesForms(axes: readonly number[], rank: number): fc.Arbitrary<number[]> {
  return fc.array(fc.boolean(), { minLength: axes.length, maxLength: axes.length })
    .map((negs) => axes.map((a, i) => (negs[i] ? a - rank : a)));
}

function norm(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

const fmt = (x: unknown): string => JSON.stringify(x);

// ---------------------------------------------------------------- case makers

function elementwise1(
  name: string,
  build: (x: Value) => Value,
  reference: (x: NdArray) => NdArray,
  domain: Domain,
  tolerance: Tolerance,
  float64: true | string = true,
  webgpu: true | string = true,
): OpSpec {
  return {
    name,
    float64,
    webgpu,
    arb: (o) =>
      fc.tuple(shapeArb(o), seedArb).map(([s, seed]) => ({
        op: name,
        describe: `x [${s}]`,
        inputs: [float(fill(s, seed, domain))],
        build: ([x]) => build(x),
        reference: ([x]) => reference(x),
        tolerance,
      })),
  };
}

function elementwise2(
  name: string,
  build: (a: Value, b: Value) => Value,
  reference: (a: NdArray, b: NdArray) => NdArray,
  domains: [Domain, Domain],
  tolerance: Tolerance,
  float64: true | string = true,
  outputKind = "float",
): OpSpec {
  return {
    name,
    float64,
    webgpu: true,
    arb: (o) =>
      shapeArb(o).chain((out) => fc.tuple(operandOf(out), operandOf(out), seedArb)).map(([sa, sb, seed]) => ({
        op: name,
        describe: `a [${sa}] b [${sb}] -> ${outputKind}`,
        inputs: [float(fill(sa, seed, domains[0])), float(fill(sb, seed + 1, domains[1]))],
        build: ([a, b]) => build(a, b),
        reference: ([a, b]) => reference(a, b),
        tolerance: { ...tolerance, scale: Math.max(1, maxAbs(fill(sa, seed, domains[0]))) },
      })),
  };
}

function reduction(
  name: string,
  build: (x: Value, axes: number[], keepdims: boolean) => Value,
  reference: (x: NdArray, axes: number[], keepdims: boolean) => NdArray,
  kind: "sum" | "mean" | "max" | "lse",
  positiveDims: boolean,
): OpSpec {
  return {
    name,
    float64: true,
    webgpu: true,
    arb: (o) =>
      shapeArb(o, 0, o.maxRank, positiveDims).chain((s) =>
        fc.tuple(
          fc.constant(s),
          fc.subarray(s.map((_, i) => i)).chain((axes) => axesForms(axes, s.length)),
          fc.boolean(),
          seedArb,
        )
      ).map(([s, axes, keepdims, seed]) => {
        const x = fill(s, seed, STD);
        const reduced = axes.reduce((n, a) => n * s[norm(a, s.length)], 1);
        const scale = kind === "sum" ? reduced * maxAbs(x) : kind === "lse" ? Math.log(reduced + 1) + 1 : 1;
        return {
          op: name,
          describe: `x [${s}] axes ${fmt(axes)} keepdims ${keepdims}`,
          inputs: [float(x)],
          build: ([v]) => build(v, axes, keepdims),
          reference: ([v]) => reference(v, axes, keepdims),
          tolerance: { kind: kind === "lse" ? "trans" : kind === "max" ? "exact" : "arith", scale },
        };
      }),
  };
}

/** Distinct random picks from [0, n) (a partial Fisher-Yates shuffle). */
function distinct(r: () => number, n: number, k: number): number[] {
  const pool = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(r() * (n - i));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, k);
}

// ---------------------------------------------------------------- the specs

const CAST_TARGETS = ["int64", "int32", "bool", "float32", "float64"] as const;

/** Every op builder with its case generator. */
export const OP_SPECS: readonly OpSpec[] = [
  elementwise2("add", op.add, ref.add, [STD, STD], ARITH),
  elementwise2("sub", op.sub, ref.sub, [STD, STD], ARITH),
  elementwise2("mul", op.mul, ref.mul, [STD, STD], ARITH),
  elementwise2("div", op.div, ref.div, [STD, awayFromZero(0.5, 3)], ARITH),
  elementwise2("pow", op.pow, ref.pow, [uniform(0.1, 3), uniform(-2, 2)], TRANS),
  elementwise2("max", op.max, ref.max, [mixed, mixed], EXACT),
  elementwise2("min", op.min, ref.min, [mixed, mixed], EXACT),
  elementwise2("equal", op.equal, ref.equal, [ints(-2, 2), ints(-2, 2)], EXACT, true, "bool"),
  elementwise2("less", op.less, ref.less, [mixed, mixed], EXACT, true, "bool"),
  elementwise2("greater", op.greater, ref.greater, [mixed, mixed], EXACT, true, "bool"),
  elementwise1("neg", op.neg, ref.neg, STD, EXACT),
  elementwise1("abs", op.abs, ref.abs, STD, EXACT),
  elementwise1("relu", op.relu, ref.relu, STD, EXACT),
  elementwise1("identity", op.identity, ref.identity, STD, EXACT),
  elementwise1("exp", op.exp, ref.exp, uniform(-5, 5), TRANS),
  elementwise1("log", op.log, ref.log, uniform(0.01, 10), TRANS),
  elementwise1("sqrt", op.sqrt, ref.sqrt, uniform(0, 10), ARITH),
  elementwise1("reciprocal", op.reciprocal, ref.reciprocal, awayFromZero(0.1, 3), ARITH),
  elementwise1("tanh", op.tanh, ref.tanh, uniform(-4, 4), TRANS),
  elementwise1("sigmoid", op.sigmoid, ref.sigmoid, uniform(-6, 6), TRANS),
  elementwise1("erf", op.erf, ref.erf, uniform(-3, 3), TRANS, "Erf has no double kernel in ORT Web 1.30"),
  {
    name: "not",
    float64: true,
    webgpu: true,
    arb: (o) =>
      fc.tuple(shapeArb(o), seedArb).map(([s, seed]) => ({
        op: "not",
        describe: `x [${s}]`,
        inputs: [bool(fill(s, seed, ints(0, 1)))],
        build: ([x]) => op.not(x),
        reference: ([x]) => ref.not(x),
        tolerance: EXACT,
      })),
  },
  {
    name: "where",
    float64: true,
    webgpu: true,
    arb: (o) =>
      shapeArb(o).chain((out) => fc.tuple(operandOf(out), operandOf(out), operandOf(out), seedArb)).map((
        [sc, sa, sb, seed],
      ) => ({
        op: "where",
        describe: `cond [${sc}] a [${sa}] b [${sb}]`,
        inputs: [bool(fill(sc, seed, ints(0, 1))), float(fill(sa, seed + 1, STD)), float(fill(sb, seed + 2, STD))],
        build: ([c, a, b]) => op.where(c, a, b),
        reference: ([c, a, b]) => ref.where(c, a, b),
        tolerance: EXACT,
      })),
  },
  {
    name: "cast",
    float64: true,
    webgpu: true,
    arb: (o) =>
      fc.tuple(
        shapeArb(o),
        fc.constantFrom(...CAST_TARGETS.filter((t) => o.float64 || t !== "float64"), "fromInt64" as const),
        seedArb,
      ).map((
        [s, to, seed],
      ) => {
        if (to === "fromInt64") {
          return {
            op: "cast",
            describe: `int64 x [${s}] to the float type`,
            inputs: [int64(fill(s, seed, ints(-1000, 1000)))],
            build: ([x], dtype) => op.cast(x, dtype),
            reference: ([x]) => ref.identity(x),
            tolerance: EXACT,
          };
        }
        // Exact zeros test the bool conversion; values stay well inside int32.
        const domain: Domain = (r) => (r() < 0.2 ? 0 : uniform(-100, 100)(r));
        return {
          op: "cast",
          describe: `x [${s}] to ${to}`,
          inputs: [float(fill(s, seed, domain))],
          build: ([x]) => op.cast(x, to),
          reference: ([x]) => ref.cast(x, to),
          tolerance: EXACT,
        };
      }),
  },
  {
    name: "clip",
    float64: true,
    webgpu: true,
    arb: (o) =>
      fc.tuple(
        shapeArb(o),
        fc.option(fc.integer({ min: -8, max: 8 })),
        fc.option(fc.integer({ min: -8, max: 8 })),
        seedArb,
      ).map(([s, l, h, seed]) => {
        // Quarter steps are exact in float32; keep lo <= hi.
        let lo = l === null ? undefined : l / 4, hi = h === null ? undefined : h / 4;
        if (lo !== undefined && hi !== undefined && lo > hi) [lo, hi] = [hi, lo];
        return {
          op: "clip",
          describe: `x [${s}] lo ${lo} hi ${hi}`,
          inputs: [float(fill(s, seed, STD))],
          build: ([x]) => op.clip(x, lo, hi),
          reference: ([x]) => ref.clip(x, lo, hi),
          tolerance: EXACT,
        };
      }),
  },
  {
    name: "matmul",
    float64: true,
    webgpu: true,
    arb: (o) =>
      fc.record({
        batch: shapeArb(o, 0, Math.min(2, o.maxRank - 2)),
        m: dimArb(o),
        k: dimArb(o),
        n: dimArb(o),
        vec: fc.constantFrom("none", "none", "none", "a", "b", "both"),
        seed: seedArb,
      }).chain((p) => fc.tuple(fc.constant(p), operandOf(p.batch), operandOf(p.batch)))
        // ORT 1.30 bugs with empty tensors in MatMul: next to a 1-D operand or a broadcast batch dim it
        // fails ("cannot broadcast on dim 0"), returns uninitialized memory ([m,0] x [0]) or a wrong
        // batch shape ([1,1,1,0] x [1,3,0,1] -> [1,1,1,1]). Empty tensors only with equal batch dims.
        .filter(([p, ba, bb]) =>
          ![...ba, ...bb, p.m, p.k, p.n].includes(0) || (p.vec === "none" && ba.join() === bb.join())
        )
        .map(([p, ba, bb]) => {
          const sa = p.vec === "a" || p.vec === "both" ? [p.k] : [...ba, p.m, p.k];
          const sb = p.vec === "b" || p.vec === "both" ? [p.k] : [...bb, p.k, p.n];
          return {
            op: "matmul",
            describe: `a [${sa}] b [${sb}]`,
            inputs: [float(fill(sa, p.seed, STD)), float(fill(sb, p.seed + 1, STD))],
            build: ([a, b]) => op.matmul(a, b),
            reference: ([a, b]) => ref.matmul(a, b),
            tolerance: { kind: "arith", scale: 9 * Math.max(1, p.k) },
          };
        }),
  },
  {
    name: "gemm",
    float64: true,
    webgpu: true,
    arb: (o) =>
      fc.record({
        m: dimArb(o),
        // ORT 1.30 bug: with k = 0 Gemm returns C instead of beta * C, so k stays positive.
        k: dimArb(o, true),
        n: dimArb(o),
        transA: fc.boolean(),
        transB: fc.boolean(),
        alpha: fc.option(fc.integer({ min: -8, max: 8 })),
        beta: fc.option(fc.integer({ min: -8, max: 8 })),
        c: fc.constantFrom("none", "scalar", "one", "n", "m1", "1n", "mn"),
        seed: seedArb,
      }).map((p) => {
        const sa = p.transA ? [p.k, p.m] : [p.m, p.k];
        const sb = p.transB ? [p.n, p.k] : [p.k, p.n];
        const sc = { none: null, scalar: [], one: [1], n: [p.n], m1: [p.m, 1], "1n": [1, p.n], mn: [p.m, p.n] }[p.c];
        const options = {
          alpha: p.alpha === null ? undefined : p.alpha / 4,
          beta: p.beta === null ? undefined : p.beta / 4,
          transA: p.transA,
          transB: p.transB,
        };
        const inputs = [float(fill(sa, p.seed, STD)), float(fill(sb, p.seed + 1, STD))];
        if (sc) inputs.push(float(fill(sc, p.seed + 2, STD)));
        return {
          op: "gemm",
          describe: `a [${sa}] b [${sb}] c ${sc ? `[${sc}]` : "none"} ${fmt(options)}`,
          inputs,
          build: ([a, b, c]) => op.gemm(a, b, c ?? null, options),
          reference: ([a, b, c]) => ref.gemm(a, b, c ?? null, options),
          tolerance: { kind: "arith", scale: 9 * Math.max(1, p.k) * 2 + 6 },
        };
      }),
  },
  ...(["softmax", "logSoftmax"] as const).map((name): OpSpec => ({
    name,
    float64: true,
    webgpu: true,
    arb: (o) =>
      shapeArb(o, 1).chain((s) => fc.tuple(fc.constant(s), axisArb(s.length), seedArb)).map(([s, axis, seed]) => ({
        op: name,
        describe: `x [${s}] axis ${axis}`,
        inputs: [float(fill(s, seed, uniform(-5, 5)))],
        build: ([x]) => op[name](x, axis),
        reference: ([x]) => ref[name](x, axis),
        tolerance: { kind: "trans", scale: 10 },
      })),
  })),
  {
    name: "layerNorm",
    float64: true,
    webgpu: true,
    arb: (o) =>
      shapeArb(o, 1, o.maxRank, true).chain((s) =>
        fc.tuple(fc.constant(s), axisArb(s.length), fc.boolean(), fc.constantFrom(1e-5, 1e-3), seedArb)
      ).map(([s, axis, hasBias, eps, seed]) => {
        const normShape = s.slice(norm(axis, s.length));
        const inputs = [float(fill(s, seed, STD)), float(fill(normShape, seed + 1, STD))];
        if (hasBias) inputs.push(float(fill(normShape, seed + 2, STD)));
        // A kernel that takes var = E[x^2] - E[x]^2 (WebGPU's errors look like it) loses about
        // 1e-7 * E[x^2] / var of relative precision on rows of close values: widen the tolerance by that.
        const n = sizeOfShape(normShape), x = inputs[0].value.data;
        let ratio = 1;
        for (let r = 0; r < x.length / n; r++) {
          const row = x.subarray(r * n, (r + 1) * n);
          const mean = row.reduce((p, q) => p + q, 0) / n;
          const sq = row.reduce((p, q) => p + q * q, 0) / n;
          ratio = Math.max(ratio, sq / (sq - mean * mean + eps));
        }
        return {
          op: "layerNorm",
          describe: `x [${s}] axis ${axis} bias ${hasBias} eps ${eps}`,
          inputs,
          build: ([x, sc, b]) => op.layerNorm(x, sc, b ?? null, axis, eps),
          // The epsilon attribute is a float32 in the model, so ORT uses fround(eps) even in float64.
          reference: ([x, sc, b]) => ref.layerNorm(x, sc, b ?? null, axis, Math.fround(eps)),
          tolerance: { kind: "trans", scale: 30 * ratio },
        };
      }),
  },
  reduction("reduceSum", op.reduceSum, ref.reduceSum, "sum", false),
  reduction("reduceMean", op.reduceMean, ref.reduceMean, "mean", true),
  reduction("reduceMax", op.reduceMax, ref.reduceMax, "max", true),
  reduction("reduceLogSumExp", op.reduceLogSumExp, ref.reduceLogSumExp, "lse", true),
  {
    name: "reshape",
    float64: true,
    webgpu: true,
    arb: (o) =>
      fc.record({
        s: shapeArb(o),
        order: fc.array(fc.nat(), { maxLength: o.maxRank }),
        merges: fc.array(fc.boolean(), { maxLength: o.maxRank }),
        ones: fc.array(fc.nat({ max: o.maxRank }), { maxLength: 2 }),
        infer: fc.option(fc.nat()),
        copy: fc.boolean(),
        seed: seedArb,
      }).map((p) => {
        // Target: the input dims shuffled, neighbours merged, size-1 axes inserted.
        const dims = [...p.s];
        p.order.forEach((j, i) => {
          if (dims.length > 1) {
            const a = i % dims.length, b = j % dims.length;
            [dims[a], dims[b]] = [dims[b], dims[a]];
          }
        });
        const target: number[] = [];
        dims.forEach((d, i) => {
          if (i > 0 && p.merges[i] && target.length) target[target.length - 1] *= d;
          else target.push(d);
        });
        for (const at of p.ones) target.splice(Math.min(at, target.length), 0, 1);
        // In ONNX a 0 in the target copies the input dim, so a true size-0 dim can only be written where
        // the input has 0 at the same axis; other targets with 0 are dropped by the filter below.
        const written = target.map((d, i) => (p.copy && i < p.s.length && p.s[i] === d ? 0 : d));
        if (p.infer !== null && written.length) {
          const at = p.infer % written.length;
          const rest = target.filter((_, i) => i !== at).reduce((a, b) => a * b, 1);
          if (rest !== 0 && written[at] !== 0) written[at] = -1;
        }
        return { written, p };
      }).filter(({ written, p }) => written.every((d, i) => d !== 0 || p.s[i] === 0)).map(({ written, p }) => {
        return {
          op: "reshape",
          describe: `x [${p.s}] to [${written}]`,
          inputs: [float(fill(p.s, p.seed, STD))],
          build: ([x]) => op.reshape(x, written),
          reference: ([x]) => ref.reshape(x, written),
          tolerance: EXACT,
        };
      }),
  },
  {
    name: "transpose",
    float64: true,
    webgpu: true,
    arb: (o) =>
      shapeArb(o).chain((s) =>
        fc.tuple(
          fc.constant(s),
          fc.option(fc.shuffledSubarray(s.map((_, i) => i), { minLength: s.length, maxLength: s.length })),
          seedArb,
        )
      ).map(([s, perm, seed]) => ({
        op: "transpose",
        describe: `x [${s}] perm ${fmt(perm)}`,
        inputs: [float(fill(s, seed, STD))],
        build: ([x]) => op.transpose(x, perm ?? undefined),
        reference: ([x]) => ref.transpose(x, perm ?? undefined),
        tolerance: EXACT,
      })),
  },
  {
    name: "squeeze",
    float64: true,
    webgpu: true,
    arb: (o) =>
      shapeArb(o).chain((s0) =>
        fc.tuple(fc.constant(s0), fc.array(fc.boolean(), { minLength: s0.length, maxLength: s0.length }))
      ).chain(([s0, mask]) => {
        const s = s0.map((d, i) => (mask[i] ? 1 : d));
        const axes = s.flatMap((_, i) => (mask[i] ? [i] : []));
        return fc.tuple(fc.constant(s), axesForms(axes, s.length), seedArb);
      }).map(([s, axes, seed]) => ({
        op: "squeeze",
        describe: `x [${s}] axes ${fmt(axes)}`,
        inputs: [float(fill(s, seed, STD))],
        build: ([x]) => op.squeeze(x, axes),
        reference: ([x]) => ref.squeeze(x, axes),
        tolerance: EXACT,
      })),
  },
  {
    name: "unsqueeze",
    float64: true,
    webgpu: true,
    arb: (o) =>
      fc.tuple(shapeArb(o, 0, o.maxRank - 1), fc.integer({ min: 0, max: 2 })).chain(([s, k]) =>
        fc.tuple(
          fc.constant(s),
          fc.shuffledSubarray(Array.from({ length: s.length + k }, (_, i) => i), { minLength: k, maxLength: k })
            .chain((axes) => axesForms(axes, s.length + k)),
          seedArb,
        )
      ).map(([s, axes, seed]) => ({
        op: "unsqueeze",
        describe: `x [${s}] axes ${fmt(axes)}`,
        inputs: [float(fill(s, seed, STD))],
        build: ([x]) => op.unsqueeze(x, axes),
        reference: ([x]) => ref.unsqueeze(x, axes),
        tolerance: EXACT,
      })),
  },
  {
    name: "concat",
    float64: true,
    webgpu: true,
    arb: (o) =>
      shapeArb(o, 1, 3).chain((s) =>
        fc.tuple(fc.constant(s), axisArb(s.length), fc.array(dimArb(o), { minLength: 1, maxLength: 4 }), seedArb)
      ).map(([s, axis, sizes, seed]) => {
        const shapes = sizes.map((d) => s.map((e, i) => (i === norm(axis, s.length) ? d : e)));
        return {
          op: "concat",
          describe: `[${shapes.map((x) => `[${x}]`)}] axis ${axis}`,
          inputs: shapes.map((x, i) => float(fill(x, seed + i, STD))),
          build: (xs) => op.concat(xs, axis),
          reference: (xs) => ref.concat(xs, axis),
          tolerance: EXACT,
        };
      }),
  },
  {
    name: "slice",
    float64: true,
    webgpu: true,
    arb: (o) =>
      shapeArb(o, 1, 3).chain((s) => {
        const bound = (d: number) =>
          fc.oneof(
            { weight: 6, arbitrary: fc.integer({ min: -d - 2, max: d + 2 }) },
            { weight: 1, arbitrary: fc.constantFrom(-1e9, 1e9) },
          );
        const perAxis = s.map((d, a) =>
          fc.record({ axis: fc.constant(a), start: bound(d), end: bound(d), step: fc.constantFrom(1, 1, 2, 3, -1, -2) })
        );
        return fc.tuple(
          fc.constant(s),
          fc.shuffledSubarray(perAxis.map((_, i) => i), { minLength: 1 }),
          fc.tuple(...perAxis),
          fc.boolean(),
          fc.boolean(),
          seedArb,
        );
      }).map(([s, pick, per, negAxes, omit, seed]) => {
        const chosen = pick.map((i) => per[i]);
        const starts = chosen.map((c) => c.start), ends = chosen.map((c) => c.end);
        const axes = chosen.map((c) => (negAxes ? c.axis - s.length : c.axis));
        const steps = chosen.map((c) => c.step);
        // When every step is 1 and the axes are 0..n-1 in order, also try the builder's defaults.
        const canOmit = omit && steps.every((v) => v === 1) && chosen.every((c, i) => c.axis === i);
        return {
          op: "slice",
          describe: `x [${s}] starts ${fmt(starts)} ends ${fmt(ends)} axes ${canOmit ? "-" : fmt(axes)} steps ${
            canOmit ? "-" : fmt(steps)
          }`,
          inputs: [float(fill(s, seed, STD))],
          build: ([x]) => canOmit ? op.slice(x, starts, ends) : op.slice(x, starts, ends, axes, steps),
          reference: ([x]) => ref.slice(x, starts, ends, axes, steps),
          tolerance: EXACT,
        };
      }),
  },
  {
    name: "split",
    float64: true,
    webgpu: true,
    arb: (o) =>
      shapeArb(o, 1, 3).chain((s) =>
        fc.tuple(fc.constant(s), axisArb(s.length), fc.integer({ min: 1, max: 3 }), seedArb, seedArb)
      ).map(([s, axis, parts, cutSeed, seed]) => {
        const d = s[norm(axis, s.length)];
        const r = rng(cutSeed);
        const cuts = Array.from({ length: parts - 1 }, () => Math.floor(r() * (d + 1))).sort((a, b) => a - b);
        const edges = [0, ...cuts, d];
        const sizes = edges.slice(1).map((e, i) => e - edges[i]);
        return {
          op: "split",
          describe: `x [${s}] sizes ${fmt(sizes)} axis ${axis}`,
          inputs: [float(fill(s, seed, STD))],
          build: ([x]) => op.split(x, sizes, axis),
          reference: ([x]) => ref.split(x, sizes, axis),
          tolerance: EXACT,
        };
      }),
  },
  {
    name: "gather",
    float64: true,
    webgpu: true,
    arb: (o) =>
      shapeArb(o, 1, 3).chain((s) => fc.tuple(fc.constant(s), axisArb(s.length), shapeArb(o, 0, 2), seedArb))
        .filter(([s, axis]) => s[norm(axis, s.length)] > 0)
        .map(([s, axis, si, seed]) => {
          const d = s[norm(axis, s.length)];
          return {
            op: "gather",
            describe: `data [${s}] indices [${si}] axis ${axis}`,
            inputs: [float(fill(s, seed, STD)), int64(fill(si, seed + 1, ints(-d, d - 1)))],
            build: ([x, i]) => op.gather(x, i, axis),
            reference: ([x, i]) => ref.gather(x, i, axis),
            tolerance: EXACT,
          };
        }),
  },
  {
    name: "gatherElements",
    float64: true,
    webgpu: true,
    arb: (o) =>
      shapeArb(o, 1, 3, true).chain((s) =>
        fc.tuple(
          fc.constant(s),
          axisArb(s.length),
          fc.tuple(...s.map((d) => fc.integer({ min: 0, max: d }))),
          dimArb(o),
          seedArb,
        )
      ).map(([s, axis, within, along, seed]) => {
        const a = norm(axis, s.length);
        const si = within.map((d, i) => (i === a ? along : d));
        return {
          op: "gatherElements",
          describe: `data [${s}] indices [${si}] axis ${axis}`,
          inputs: [float(fill(s, seed, STD)), int64(fill(si, seed + 1, ints(-s[a], s[a] - 1)))],
          build: ([x, i]) => op.gatherElements(x, i, axis),
          reference: ([x, i]) => ref.gatherElements(x, i, axis),
          tolerance: EXACT,
        };
      }),
  },
  {
    name: "scatterElements",
    float64: true,
    webgpu: true,
    arb: (o) =>
      shapeArb(o, 1, 3, true).chain((s) =>
        fc.tuple(
          fc.constant(s),
          axisArb(s.length),
          fc.tuple(...s.map((d) => fc.integer({ min: 0, max: d }))),
          fc.constantFrom("add" as const, "add" as const, "none" as const),
          fc.integer({ min: 1, max: 6 }),
          seedArb,
        )
      ).map(([s, axis, within, reduction, along, seed]) => {
        const a = norm(axis, s.length);
        // "none" with duplicate indices is undefined in ONNX: draw distinct positions per lane there.
        const si = within.map((d, i) => (i === a ? (reduction === "add" ? along : Math.min(along, s[a])) : d));
        const indices = ref.nd(si);
        const r = rng(seed + 2);
        ref.forEachLane(si, a, (lane) => {
          const picks = reduction === "add" ? lane.map(() => Math.floor(r() * s[a])) : distinct(r, s[a], lane.length);
          lane.forEach((p, j) => (indices.data[p] = r() < 0.3 ? picks[j] - s[a] : picks[j]));
        });
        return {
          op: "scatterElements",
          describe: `data [${s}] indices [${si}] axis ${axis} reduction ${reduction} ${fmt(Array.from(indices.data))}`,
          inputs: [float(fill(s, seed, STD)), int64(indices), float(fill(si, seed + 1, STD))],
          build: ([x, i, u]) => op.scatterElements(x, i, u, axis, reduction),
          reference: ([x, i, u]) => ref.scatterElements(x, i, u, axis, reduction),
          tolerance: { kind: "arith", scale: 3 * (along + 1) },
        };
      }),
  },
  {
    name: "scatterND",
    float64: true,
    webgpu: true,
    arb: (o) =>
      shapeArb(o, 1, 3, true).chain((s) =>
        fc.tuple(
          fc.constant(s),
          fc.integer({ min: 1, max: s.length }),
          fc.integer({ min: 1, max: 4 }),
          fc.constantFrom("add" as const, "none" as const),
          seedArb,
        )
      ).map(([s, k, rows, reduction, seed]) => {
        const cells = sizeOfShape(s.slice(0, k));
        const n = reduction === "none" ? Math.min(rows, cells) : rows;
        const r = rng(seed + 2);
        const flat = reduction === "none" ? distinct(r, cells, n) : Array.from({ length: n }, () => r() * cells | 0);
        const indices = ref.nd([n, k], flat.flatMap((f) => ref.unravel(f, s.slice(0, k))));
        const su = [n, ...s.slice(k)];
        return {
          op: "scatterND",
          describe: `data [${s}] indices ${fmt(Array.from(indices.data))} [${n},${k}] reduction ${reduction}`,
          inputs: [float(fill(s, seed, STD)), int64(indices), float(fill(su, seed + 1, STD))],
          build: ([x, i, u]) => op.scatterND(x, i, u, reduction),
          reference: ([x, i, u]) => ref.scatterND(x, i, u, reduction),
          tolerance: { kind: "arith", scale: 3 * (n + 1) },
        };
      }),
  },
  {
    name: "expand",
    float64: true,
    webgpu: true,
    arb: (o) =>
      shapeArb(o).chain((out) => fc.tuple(operandOf(out), operandOf(out), seedArb)).map(([sx, target, seed]) => ({
        op: "expand",
        describe: `x [${sx}] to [${target}]`,
        inputs: [float(fill(sx, seed, STD))],
        build: ([x]) => op.expand(x, target),
        reference: ([x]) => ref.expand(x, target),
        tolerance: EXACT,
      })),
  },
  {
    name: "expandAs",
    float64: true,
    webgpu: true,
    arb: (o) =>
      shapeArb(o).chain((out) => fc.tuple(operandOf(out), operandOf(out), seedArb)).map(([sx, sl, seed]) => ({
        op: "expandAs",
        describe: `x [${sx}] like [${sl}]`,
        inputs: [float(fill(sx, seed, STD)), float(fill(sl, seed + 1, STD))],
        build: ([x, like]) => op.expandAs(x, like),
        reference: ([x, like]) => ref.expand(x, like.shape),
        tolerance: EXACT,
      })),
  },
  {
    name: "cumsum",
    float64: true,
    webgpu: true,
    arb: (o) =>
      shapeArb(o, 1).chain((s) => fc.tuple(fc.constant(s), axisArb(s.length), fc.boolean(), fc.boolean(), seedArb))
        .map(([s, axis, exclusive, reverse, seed]) => ({
          op: "cumsum",
          describe: `x [${s}] axis ${axis} exclusive ${exclusive} reverse ${reverse}`,
          inputs: [float(fill(s, seed, STD))],
          build: ([x]) => op.cumsum(x, axis, exclusive, reverse),
          reference: ([x]) => ref.cumsum(x, axis, exclusive, reverse),
          tolerance: { kind: "arith", scale: 3 * s[norm(axis, s.length)] },
        })),
  },
  {
    name: "argMax",
    float64: true,
    webgpu: true,
    arb: (o) =>
      shapeArb(o, 1, o.maxRank, true).chain((s) => fc.tuple(fc.constant(s), axisArb(s.length), fc.boolean(), seedArb))
        .map(([s, axis, keepdims, seed]) => ({
          op: "argMax",
          describe: `x [${s}] axis ${axis} keepdims ${keepdims}`,
          inputs: [float(fill(s, seed, mixed))],
          build: ([x]) => op.argMax(x, axis, keepdims),
          reference: ([x]) => ref.argMax(x, axis, keepdims),
          tolerance: EXACT,
        })),
  },
  {
    name: "topK",
    float64: true,
    webgpu: true,
    arb: (o) =>
      shapeArb(o, 1, 3, true).chain((s) => fc.tuple(fc.constant(s), axisArb(s.length), fc.nat(), seedArb))
        .map(([s, axis, kk, seed]) => {
          const k = kk % (s[norm(axis, s.length)] + 1);
          return {
            op: "topK",
            describe: `x [${s}] k ${k} axis ${axis}`,
            inputs: [float(fill(s, seed, mixed))],
            build: ([x]) => op.topK(x, k, axis),
            reference: ([x]) => ref.topK(x, k, axis),
            tolerance: EXACT,
          };
        }),
  },
  {
    name: "trilu",
    float64: true,
    webgpu: true,
    arb: (o) =>
      shapeArb(o, 2).chain((s) =>
        fc.tuple(fc.constant(s), fc.boolean(), fc.option(fc.integer({ min: -4, max: 4 })), seedArb)
      ).map(([s, upper, k, seed]) => ({
        op: "trilu",
        describe: `x [${s}] upper ${upper} k ${k}`,
        inputs: [float(fill(s, seed, STD))],
        build: ([x]) => k === null ? op.trilu(x, upper) : op.trilu(x, upper, k),
        reference: ([x]) => ref.trilu(x, upper, k ?? 0),
        tolerance: EXACT,
      })),
  },
  {
    name: "shapeOf",
    float64: true,
    webgpu: true,
    arb: (o) =>
      shapeArb(o).chain((s) => {
        const bound = fc.option(fc.integer({ min: -s.length - 2, max: s.length + 2 }));
        return fc.tuple(fc.constant(s), bound, bound, seedArb);
      }).map(([s, start, end, seed]) => ({
        op: "shapeOf",
        describe: `x [${s}] start ${start} end ${end}`,
        inputs: [float(fill(s, seed, STD))],
        build: ([x]) => op.shapeOf(x, start ?? undefined, end ?? undefined),
        reference: ([x]) => ref.shapeOf(x, start ?? undefined, end ?? undefined),
        tolerance: EXACT,
      })),
  },
];
