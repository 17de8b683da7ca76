/**
 * A small typed IR for ONNX graphs: values with element type and shape known at build time,
 * nodes of standard ONNX ops, initializers, inputs and outputs.
 *
 * Shapes are static numbers or symbolic expressions (`"batch"`, `"batch*seq"`, `"past+1"`; see
 * `dims.ts`), stored in canonical form so that equal sizes compare equal. Op builders in `ops.ts`
 * infer and check them so that a mistake fails while the graph is built, naming the op, rather
 * than inside ORT. The graph remembers, for every symbol, a value that carries it (the first one
 * registered with that dim, usually a graph input), so a builder can compute any dim expression
 * at run time (`ops.dimValue`).
 *
 * @module
 */

import { type AnyTypedArray, type DType, dtypeOfArray } from "./dtype.ts";
import { canonicalDim, type Dim, linearDim } from "./dims.ts";

export type { Dim } from "./dims.ts";

/** A shape: one `Dim` per axis. */
export type Shape = readonly Dim[];

/** An attribute value of a node, tagged by its ONNX attribute type. */
export type Attribute =
  | { readonly type: "int"; readonly value: number }
  | { readonly type: "float"; readonly value: number }
  | { readonly type: "string"; readonly value: string }
  | { readonly type: "ints"; readonly value: readonly number[] }
  | { readonly type: "floats"; readonly value: readonly number[] }
  | { readonly type: "strings"; readonly value: readonly string[] }
  | { readonly type: "tensor"; readonly value: TensorData }
  | { readonly type: "graph"; readonly value: Graph };

/** Constant tensor data: a typed array plus its shape and element type. */
export interface TensorData {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: AnyTypedArray;
}

/** A value flowing through a graph (an input, an initializer or a node output). */
export interface Value {
  readonly graph: Graph;
  readonly name: string;
  readonly dtype: DType;
  readonly shape: Shape;
}

/** A node: one ONNX op applied to named values. An empty input name is an omitted optional input. */
export interface Node {
  readonly op: string;
  readonly domain: string;
  readonly name: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes: Readonly<Record<string, Attribute>>;
}

/** Attribute constructors, so an int is never mistaken for a float. */
export const attr = {
  int: (value: number): Attribute => ({ type: "int", value }),
  float: (value: number): Attribute => ({ type: "float", value }),
  string: (value: string): Attribute => ({ type: "string", value }),
  ints: (value: readonly number[]): Attribute => ({ type: "ints", value }),
  floats: (value: readonly number[]): Attribute => ({ type: "floats", value }),
  strings: (value: readonly string[]): Attribute => ({ type: "strings", value }),
  tensor: (value: TensorData): Attribute => ({ type: "tensor", value }),
} as const;

/** The error thrown when a graph is built wrongly (bad shapes, types, names). */
export class GraphError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GraphError";
  }
}

/** Number of elements of a static shape; throws on a symbolic one. */
export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) {
    if (typeof d !== "number") {
      throw new GraphError(`Cannot count elements of a symbolic shape: [${formatShape(shape)}]`);
    }
    n *= d;
  }
  return n;
}

/** True when every dimension is a number. */
export function isStatic(shape: Shape): shape is readonly number[] {
  return shape.every((d) => typeof d === "number");
}

/** `2,"batch",4` style rendering for messages. */
export function formatShape(shape: Shape): string {
  return shape.map((d) => (typeof d === "number" ? String(d) : JSON.stringify(d))).join(", ");
}

/** A graph under construction. Values belong to exactly one graph. */
export class Graph {
  readonly name: string;
  readonly nodes: Node[] = [];
  readonly inputs: Value[] = [];
  readonly outputs: Value[] = [];
  // Explicit field types: JSR rejects inferred types in the public API ("slow types").
  readonly initializers: Map<string, TensorData> = new Map();
  /** Every value by name: inputs, initializers and node outputs. */
  readonly values: Map<string, Value> = new Map();
  /** Opset imports beyond the default domain (e.g. `com.microsoft`), only for the compat engine. */
  readonly extraOpsets: Map<string, number> = new Map();
  /**
   * Names of values typed `seq(tensor(<dtype>))` rather than tensors (their `shape` is not written:
   * elements may differ in shape): only ORT training's optimizer model uses them (src/ort_training).
   */
  readonly sequences: Set<string> = new Set();
  #counter = 0;
  #constantCache = new Map<string, Value>();
  /** Symbol -> a value carrying it: `shape(value)[axis] = symbol + offset`. */
  #dimSources = new Map<string, { value: Value; axis: number; offset: number }>();

  constructor(name = "graph") {
    this.name = name;
  }

  /** A fresh name with the given prefix, unique in this graph. */
  uniqueName(prefix: string): string {
    let name: string;
    do {
      name = `${prefix}_${this.#counter++}`;
    } while (this.values.has(name));
    return name;
  }

  #register(name: string, dtype: DType, shape: Shape): Value {
    if (this.values.has(name)) {
      throw new GraphError(`Value name ${JSON.stringify(name)} is already used in graph ${this.name}`);
    }
    for (const d of shape) {
      if (typeof d === "number" && (!Number.isInteger(d) || d < 0)) {
        throw new GraphError(`Invalid dimension ${d} in shape [${formatShape(shape)}] of ${name}`);
      }
    }
    const canonical = shape.map(canonicalDim);
    for (const d of canonical) {
      if (typeof d === "number" && d < 0) {
        throw new GraphError(`Invalid dimension ${d} in shape [${formatShape(shape)}] of ${name}`);
      }
    }
    const value: Value = { graph: this, name, dtype, shape: canonical };
    this.values.set(name, value);
    canonical.forEach((d, axis) => {
      const lin = typeof d === "string" ? linearDim(d) : null;
      if (lin && !this.#dimSources.has(lin.symbol)) {
        this.#dimSources.set(lin.symbol, { value, axis, offset: lin.offset });
      }
    });
    return value;
  }

  /**
   * A new symbol for a size known only at run time (the count of NonZero, a quotient that is no
   * polynomial): its first value becomes its source.
   */
  freshDim(hint: string): string {
    return this.uniqueName(`${hint}_dim`);
  }

  /** The value that carries `symbol` at run time: `shape(value)[axis] = symbol + offset`. */
  dimSource(symbol: string): { value: Value; axis: number; offset: number } | undefined {
    return this.#dimSources.get(symbol);
  }

  /** Declares a graph input. */
  input(name: string, dtype: DType, shape: Shape): Value {
    const v = this.#register(name, dtype, shape);
    this.inputs.push(v);
    return v;
  }

  /** Adds a named initializer (a constant stored in the model, e.g. a frozen weight). */
  initializer(name: string, tensor: TensorData): Value {
    const expected = tensor.shape.reduce((a, b) => a * b, 1);
    if (tensor.data.length !== expected) {
      throw new GraphError(
        `Initializer ${name}: data has ${tensor.data.length} elements but shape [${tensor.shape}] needs ${expected}`,
      );
    }
    const v = this.#register(name, tensor.dtype, tensor.shape);
    this.initializers.set(name, tensor);
    return v;
  }

  /**
   * A constant from a typed array. Small constants with the same content are shared, so builders
   * can ask for `[0]`, `[-1]` or `1.0` freely without bloating the model.
   */
  constant(data: AnyTypedArray, shape: readonly number[], dtype: DType = dtypeOfArray(data)): Value {
    const small = data.length <= 16;
    let key = "";
    if (small) {
      key = `${dtype}|${shape.join("x")}|${Array.from(data as ArrayLike<number | bigint>, String).join(",")}`;
      const hit = this.#constantCache.get(key);
      if (hit) return hit;
    }
    const v = this.initializer(this.uniqueName("const"), { dtype, shape, data });
    if (small) this.#constantCache.set(key, v);
    return v;
  }

  /** A float scalar constant of the given float type (shape []). */
  scalar(x: number, dtype: DType = "float32"): Value {
    switch (dtype) {
      case "float64":
        return this.constant(new Float64Array([x]), [], "float64");
      case "float32":
        return this.constant(new Float32Array([x]), [], "float32");
      case "int64":
        return this.constant(new BigInt64Array([BigInt(x)]), [], "int64");
      case "int32":
        return this.constant(new Int32Array([x]), [], "int32");
      default:
        throw new GraphError(`scalar(): unsupported dtype ${dtype}`);
    }
  }

  /** An int64 1-D constant (axes, shapes, starts/ends). */
  int64s(values: readonly number[]): Value {
    return this.constant(BigInt64Array.from(values, (v) => BigInt(v)), [values.length], "int64");
  }

  /**
   * Appends a node whose output types the caller already inferred. Op builders in `ops.ts` are
   * the normal way in; this is the primitive they share.
   */
  addNode(
    op: string,
    inputs: readonly (Value | null)[],
    outputs: readonly { dtype: DType; shape: Shape; name?: string }[],
    attributes: Record<string, Attribute> = {},
    domain = "",
  ): Value[] {
    for (const v of inputs) {
      if (v && v.graph !== this) {
        throw new GraphError(`${op}: input ${v.name} belongs to graph ${v.graph.name}, not ${this.name}`);
      }
    }
    const outs = outputs.map((o) => this.#register(o.name ?? this.uniqueName(op.toLowerCase()), o.dtype, o.shape));
    this.nodes.push({
      op,
      domain,
      name: this.uniqueName(`n_${op}`),
      inputs: inputs.map((v) => (v ? v.name : "")),
      outputs: outs.map((v) => v.name),
      attributes,
    });
    return outs;
  }

  /**
   * Marks a value as a graph output, under `name` if given (an Identity node renames it).
   * The same value may be output under several names.
   */
  output(value: Value, name?: string): Value {
    if (value.graph !== this) throw new GraphError(`output(): ${value.name} belongs to another graph`);
    let out = value;
    const alreadyOutput = this.outputs.some((o) => o.name === value.name);
    const isInputOrInit = this.inputs.includes(value) || this.initializers.has(value.name);
    if ((name && name !== value.name) || alreadyOutput || isInputOrInit) {
      out = this.addNode("Identity", [value], [{ dtype: value.dtype, shape: value.shape, name }])[0];
    }
    this.outputs.push(out);
    return out;
  }

  /**
   * Appends copies of `nodes` (of this graph) whose inputs are renamed by `rename` (names not in it
   * stay), with the same output types; `rename` gets each copied output. For rebuilding a region
   * of the graph from other inputs (recomputation in the backward pass).
   */
  replay(nodes: readonly Node[], rename: Map<string, string>): void {
    for (const n of nodes) {
      const ins = n.inputs.map((x) => (x ? this.get(rename.get(x) ?? x) : null));
      const outs = this.addNode(
        n.op,
        ins,
        n.outputs.map((o) => ({ dtype: this.get(o).dtype, shape: this.get(o).shape })),
        n.attributes,
        n.domain,
      );
      n.outputs.forEach((o, i) => rename.set(o, outs[i].name));
    }
  }

  /** Looks a value up by name; throws with the name when absent. */
  get(name: string): Value {
    const v = this.values.get(name);
    if (!v) throw new GraphError(`No value named ${JSON.stringify(name)} in graph ${this.name}`);
    return v;
  }
}
