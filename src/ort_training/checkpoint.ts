/**
 * ONNX Runtime's on-device-training checkpoint: a FlatBuffer with file identifier `ODTC`, schema
 * `onnxruntime/core/flatbuffers/schema/ort_training_checkpoint.fbs` (tensors from `ort.fbs`):
 *
 *   Checkpoint { version:int32; module_state:ModuleState; optimizer_groups:[OptimizerGroup];
 *                property_bag:PropertyBag }
 *   ModuleState { requires_grad_params:[Tensor]; frozen_params:[Tensor]; is_nominal_state:bool;
 *                 has_external_data:bool }
 *   OptimizerGroup { group_name:string; step:int64; initial_learning_rate:float;
 *                    optimizer_states:[ParameterOptimizerState] }
 *   ParameterOptimizerState { param_name:string; momentums:[Tensor] }
 *   PropertyBag { ints:[IntProperty]; floats:[FloatProperty]; strings:[StringProperty] }
 *   Tensor { name:string; doc_string:string; dims:[int64]; data_type:TensorDataType; raw_data:[uint8];
 *            string_data:[string] }
 *
 * Written with the npm `flatbuffers` builder (no generated code: the few tables are spelled out by
 * field slot here). Rules ORT 1.19 enforces (measured, see the README's ORT training section):
 * `version` must be 2; `module_state` and its `frozen_params` must be present even when empty;
 * tensors are matched to graph inputs by name; an optimizer group must hold every trainable
 * parameter, with momentums named `momentum0` (and `momentum1` for AdamW).
 *
 * @module
 */

import { Builder, ByteBuffer } from "flatbuffers";

/** The only checkpoint version ORT 1.17-1.19 read. */
export const CHECKPOINT_VERSION = 2;
/** FlatBuffer file identifier of a checkpoint. */
export const CHECKPOINT_IDENTIFIER = "ODTC";
/** ORT's TensorDataType code of float32 (the only parameter type the training API copies). */
export const FLOAT = 1;
/** The momentum names ORT's optimizers use: AdamW's m and v; SGD keeps (an unused) `momentum0`. */
export const MOMENTUM_NAMES = ["momentum0", "momentum1"] as const;

/** A named float32 tensor (parameters, momentums). */
export interface NamedTensor {
  name: string;
  dims: readonly number[];
  data: Float32Array;
}

/** Optimizer state of one parameter group (ORT only ever uses one, `group0`). */
export interface OptimizerGroup {
  name: string;
  /** Optimizer steps done; the optimizer graph is fed `step + 1`. */
  step: number;
  initialLearningRate: number;
  /** Per trainable parameter, its momentums (`momentum0`, `momentum1`). */
  states: { param: string; momentums: NamedTensor[] }[];
}

/** A checkpoint's content. */
export interface CheckpointState {
  version: number;
  /** Trainable parameters, in training-graph input order. */
  trainable: NamedTensor[];
  /** Frozen parameters that are graph inputs (Python's layout); empty when frozen weights are initializers. */
  frozen: NamedTensor[];
  isNominalState?: boolean;
  optimizer?: OptimizerGroup | null;
  properties?: { ints?: Record<string, bigint>; floats?: Record<string, number>; strings?: Record<string, string> };
}

/** A checkpoint that cannot be read or breaks ORT's rules; names the file and the field. */
export class CheckpointError extends Error {
  constructor(source: string, message: string) {
    super(`${source}: ${message}`);
    this.name = "CheckpointError";
  }
}

// --- writing ---------------------------------------------------------------------------------

/** vtable slot of field `i` (what flatc's generated `addFieldX(slot, ...)` calls take). */
const slot = (i: number) => i;

function writeTensor(b: Builder, t: NamedTensor): number {
  const n = t.dims.reduce((a, d) => a * d, 1);
  if (t.data.length !== n) {
    throw new RangeError(`Checkpoint tensor ${t.name}: ${t.data.length} values for dims [${t.dims}]`);
  }
  const name = b.createString(t.name);
  // JS typed arrays are little-endian on every platform ORT Web runs on, as raw_data must be.
  const raw = b.createByteVector(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  b.startVector(8, t.dims.length, 8);
  for (let i = t.dims.length - 1; i >= 0; i--) b.addInt64(BigInt(t.dims[i]));
  const dims = b.endVector();
  b.startObject(6);
  b.addFieldOffset(slot(0), name, 0);
  b.addFieldOffset(slot(2), dims, 0);
  b.addFieldInt32(slot(3), FLOAT, 0);
  b.addFieldOffset(slot(4), raw, 0);
  return b.endObject();
}

function offsetVector(b: Builder, offsets: readonly number[]): number {
  b.startVector(4, offsets.length, 4);
  for (let i = offsets.length - 1; i >= 0; i--) b.addOffset(offsets[i]);
  return b.endVector();
}

function writeProperties(b: Builder, p: NonNullable<CheckpointState["properties"]>): number {
  const table = <T>(entries: [string, T][], add: (v: T) => void): number =>
    offsetVector(
      b,
      entries.map(([k, v]) => {
        const name = b.createString(k);
        const str = typeof v === "string" ? b.createString(v) : 0;
        b.startObject(2);
        b.addFieldOffset(slot(0), name, 0);
        if (typeof v === "string") b.addFieldOffset(slot(1), str, 0);
        else add(v);
        return b.endObject();
      }),
    );
  const ints = table(Object.entries(p.ints ?? {}), (v) => b.addFieldInt64(slot(1), v, null));
  const floats = table(Object.entries(p.floats ?? {}), (v) => b.addFieldFloat32(slot(1), v, null));
  const strings = table(Object.entries(p.strings ?? {}), () => {});
  b.startObject(3);
  b.addFieldOffset(slot(0), ints, 0);
  b.addFieldOffset(slot(1), floats, 0);
  b.addFieldOffset(slot(2), strings, 0);
  return b.endObject();
}

/** Serializes a checkpoint (identifier `ODTC`). */
export function writeCheckpoint(c: CheckpointState): Uint8Array {
  const b = new Builder(1 << 16);
  const trainable = offsetVector(b, c.trainable.map((t) => writeTensor(b, t)));
  const frozen = offsetVector(b, c.frozen.map((t) => writeTensor(b, t)));
  b.startObject(4);
  b.addFieldOffset(slot(0), trainable, 0);
  b.addFieldOffset(slot(1), frozen, 0);
  b.addFieldInt8(slot(2), c.isNominalState ? 1 : 0, null);
  b.addFieldInt8(slot(3), 0, null);
  const moduleState = b.endObject();

  let groups = 0;
  if (c.optimizer) {
    const g = c.optimizer;
    const states = offsetVector(
      b,
      g.states.map((s) => {
        const name = b.createString(s.param);
        const moms = offsetVector(b, s.momentums.map((m) => writeTensor(b, m)));
        b.startObject(2);
        b.addFieldOffset(slot(0), name, 0);
        b.addFieldOffset(slot(1), moms, 0);
        return b.endObject();
      }),
    );
    const name = b.createString(g.name);
    b.startObject(4);
    b.addFieldOffset(slot(0), name, 0);
    b.addFieldInt64(slot(1), BigInt(g.step), null);
    b.addFieldFloat32(slot(2), g.initialLearningRate, null);
    b.addFieldOffset(slot(3), states, 0);
    groups = offsetVector(b, [b.endObject()]);
  }
  const bag = writeProperties(b, c.properties ?? {});
  b.startObject(4);
  b.addFieldInt32(slot(0), c.version, null);
  b.addFieldOffset(slot(1), moduleState, 0);
  if (groups) b.addFieldOffset(slot(2), groups, 0);
  b.addFieldOffset(slot(3), bag, 0);
  b.finish(b.endObject(), CHECKPOINT_IDENTIFIER);
  return b.asUint8Array().slice();
}

// --- reading ---------------------------------------------------------------------------------

/** A thin reader over flatbuffers' ByteBuffer: tables by field slot, bounds-checked. */
class Table {
  constructor(readonly bb: ByteBuffer, readonly pos: number, readonly source: string, readonly what: string) {}

  #field(i: number): number {
    return this.bb.__offset(this.pos, 4 + 2 * i);
  }
  has(i: number): boolean {
    return this.#field(i) !== 0;
  }
  int32(i: number, dflt: number): number {
    const o = this.#field(i);
    return o ? this.bb.readInt32(this.pos + o) : dflt;
  }
  int64(i: number, dflt: bigint): bigint {
    const o = this.#field(i);
    return o ? this.bb.readInt64(this.pos + o) : dflt;
  }
  float32(i: number, dflt: number): number {
    const o = this.#field(i);
    return o ? this.bb.readFloat32(this.pos + o) : dflt;
  }
  bool(i: number): boolean {
    const o = this.#field(i);
    return o ? this.bb.readInt8(this.pos + o) !== 0 : false;
  }
  string(i: number): string | null {
    const o = this.#field(i);
    return o ? (this.bb.__string(this.pos + o) as string) : null;
  }
  table(i: number, what: string): Table | null {
    const o = this.#field(i);
    return o ? new Table(this.bb, this.bb.__indirect(this.pos + o), this.source, what) : null;
  }
  tables(i: number, what: string): Table[] {
    const o = this.#field(i);
    if (!o) return [];
    const start = this.bb.__vector(this.pos + o), n = this.bb.__vector_len(this.pos + o);
    return Array.from(
      { length: n },
      (_, k) => new Table(this.bb, this.bb.__indirect(start + 4 * k), this.source, what),
    );
  }
  int64s(i: number): bigint[] {
    const o = this.#field(i);
    if (!o) return [];
    const start = this.bb.__vector(this.pos + o), n = this.bb.__vector_len(this.pos + o);
    return Array.from({ length: n }, (_, k) => this.bb.readInt64(start + 8 * k));
  }
  bytes(i: number): Uint8Array {
    const o = this.#field(i);
    if (!o) return new Uint8Array();
    const start = this.bb.__vector(this.pos + o), n = this.bb.__vector_len(this.pos + o);
    return this.bb.bytes().subarray(start, start + n);
  }
}

function readTensor(t: Table, where: string): NamedTensor {
  const name = t.string(0);
  if (name === null) throw new CheckpointError(t.source, `${where}: a tensor has no name`);
  const dims = t.int64s(2).map(Number);
  const type = t.int32(3, 0);
  if (type !== FLOAT) {
    throw new CheckpointError(
      t.source,
      `${where} ${name}: data_type ${type}, but ORT's training API only copies float32 (1) parameters`,
    );
  }
  const raw = t.bytes(4);
  const n = dims.reduce((a, d) => a * d, 1);
  if (raw.byteLength !== 4 * n) {
    throw new CheckpointError(
      t.source,
      `${where} ${name}: raw_data has ${raw.byteLength} bytes, dims [${dims}] need ${
        4 * n
      } (external data is not supported)`,
    );
  }
  const data = new Float32Array(n);
  new Uint8Array(data.buffer).set(raw);
  return { name, dims, data };
}

/** Parses a checkpoint, checking what ORT checks (identifier, version, module state). */
export function readCheckpoint(bytes: Uint8Array, source = "checkpoint"): CheckpointState {
  if (bytes.byteLength < 8) throw new CheckpointError(source, "too short to be an ORT training checkpoint");
  const bb = new ByteBuffer(bytes);
  if (bb.getBufferIdentifier() !== CHECKPOINT_IDENTIFIER) {
    throw new CheckpointError(
      source,
      `file identifier ${
        JSON.stringify(bb.getBufferIdentifier())
      }, expected "${CHECKPOINT_IDENTIFIER}": not an ORT training checkpoint`,
    );
  }
  let root: Table;
  try {
    root = new Table(bb, bb.readInt32(bb.position()) + bb.position(), source, "Checkpoint");
    return readRoot(root, source);
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(source, `corrupt FlatBuffer (${(e as Error).message})`);
  }
}

function readRoot(root: Table, source: string): CheckpointState {
  const version = root.int32(0, 0);
  if (version !== CHECKPOINT_VERSION) {
    throw new CheckpointError(
      source,
      `field "version" is ${version}; ORT 1.17-1.19 read version ${CHECKPOINT_VERSION} only`,
    );
  }
  const ms = root.table(1, "ModuleState");
  if (!ms) throw new CheckpointError(source, `field "module_state" is missing (ORT requires it)`);
  if (!ms.has(1)) {
    throw new CheckpointError(source, `field "module_state.frozen_params" is missing (ORT requires it, even empty)`);
  }
  if (ms.bool(3)) {
    throw new CheckpointError(source, `field "module_state.has_external_data": external data is not supported`);
  }
  const trainable = ms.tables(0, "Tensor").map((t) => readTensor(t, "module_state.requires_grad_params"));
  const frozen = ms.tables(1, "Tensor").map((t) => readTensor(t, "module_state.frozen_params"));
  const groups = root.tables(2, "OptimizerGroup");
  if (groups.length > 1) {
    throw new CheckpointError(source, `field "optimizer_groups" has ${groups.length} groups; ORT supports exactly one`);
  }
  let optimizer: OptimizerGroup | null = null;
  if (groups.length === 1) {
    const g = groups[0];
    optimizer = {
      name: g.string(0) ?? "",
      step: Number(g.int64(1, 0n)),
      initialLearningRate: g.float32(2, 0),
      states: g.tables(3, "ParameterOptimizerState").map((s) => ({
        param: s.string(0) ?? "",
        momentums: s.tables(1, "Tensor").map((t) => readTensor(t, `optimizer_groups[0] ${s.string(0)}`)),
      })),
    };
  }
  const properties: NonNullable<CheckpointState["properties"]> = { ints: {}, floats: {}, strings: {} };
  const bag = root.table(3, "PropertyBag");
  if (bag) {
    for (const p of bag.tables(0, "IntProperty")) properties.ints![p.string(0) ?? ""] = p.int64(1, 0n);
    for (const p of bag.tables(1, "FloatProperty")) properties.floats![p.string(0) ?? ""] = p.float32(1, 0);
    for (const p of bag.tables(2, "StringProperty")) properties.strings![p.string(0) ?? ""] = p.string(1) ?? "";
  }
  return { version, trainable, frozen, isNominalState: ms.bool(2), optimizer, properties };
}
