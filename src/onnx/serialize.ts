/**
 * Serialization of a {@link Graph} to ONNX `ModelProto` bytes with protobufjs's wire writer.
 *
 * Field numbers follow onnx.proto (IR version 8). Initializers can live outside the protobuf as
 * external data, which ORT takes through its `externalData` session option, so a model whose
 * weights exceed protobuf's 2 GB limit still loads, and without copies:
 *
 * - an initializer whose bytes are a view into a registered source (a safetensors file as
 *   `loadModel` read it, see {@link registerExternalSource}) is written as a reference to that file
 *   at its offset, and the file's own bytes are handed to ORT: no JS copy of the weights is made;
 * - other initializers at or above `externalDataThreshold` are copied once into one generated blob.
 *
 * With `inline`, every initializer is written into the ModelProto itself instead, for consumers
 * that take model bytes only (ORT's training API, see src/ort_training/).
 *
 * @module
 */

import protobuf from "protobufjs/minimal.js";
import { bytesOf, ONNX_DTYPE_CODE } from "./dtype.ts";
import { type Attribute, type Graph, GraphError, type Shape, type TensorData, type Value } from "./graph.ts";

/** The default-domain opset every graph imports. 18 gives Reduce* and Split their `axes`/`split` inputs. */
export const DEFAULT_OPSET = 18;
/** IR version written into models (ORT Web 1.17+ reads 8 and 10). */
export const IR_VERSION = 8;

/** Options of {@link serializeModel}. */
export interface SerializeOptions {
  /** Default-domain opset (default {@link DEFAULT_OPSET}). */
  opset?: number;
  /** Initializers with at least this many bytes go to external data (default: never). */
  externalDataThreshold?: number;
  /** File name the external data is referred to by (default `"weights.bin"`). */
  externalDataPath?: string;
  /**
   * Write every initializer into the model bytes, registered sources included (copies them): for
   * consumers with no external-data option. Not with `externalDataThreshold`.
   */
  inline?: boolean;
  /** Producer name written into the model. */
  producer?: string;
}

/** One external-data file a model refers to: its name in the model and its bytes. */
export interface ExternalFile {
  readonly path: string;
  readonly data: Uint8Array;
}

/** A serialized model and, when asked for, its external weights. */
export interface SerializedModel {
  readonly model: Uint8Array;
  /** Present when some initializer went external: pass as ORT's `externalData: [{path, data}, ...]`. */
  readonly externalData?: readonly ExternalFile[];
}

/** Registered sources by the ArrayBuffer they view. */
const SOURCES = new WeakMap<ArrayBufferLike, { name: string; bytes: Uint8Array }[]>();

/**
 * Registers `bytes` (e.g. a whole safetensors file) as an external-data source named `name`:
 * initializers whose data is a view into these bytes are serialized as references to the file
 * instead of copies. The registration lives as long as the bytes do.
 */
export function registerExternalSource(bytes: Uint8Array, name: string): void {
  const list = SOURCES.get(bytes.buffer) ?? [];
  list.push({ name, bytes });
  SOURCES.set(bytes.buffer, list);
}

/** The registered source that contains the whole of `data`, if any. */
function sourceOf(data: ArrayBufferView): { name: string; bytes: Uint8Array } | undefined {
  const list = SOURCES.get(data.buffer);
  if (!list) return undefined;
  return list.find((s) =>
    data.byteOffset >= s.bytes.byteOffset &&
    data.byteOffset + data.byteLength <= s.bytes.byteOffset + s.bytes.byteLength
  );
}

/** Source-backed initializers smaller than this stay inline (norm weights, biases: not worth a reference). */
const SOURCE_MIN_BYTES = 1024;

type Writer = protobuf.Writer;

const ATTR_TYPE = {
  float: 1,
  int: 2,
  string: 3,
  tensor: 4,
  graph: 5,
  floats: 6,
  ints: 7,
  strings: 8,
} as const;

function writeString(w: Writer, field: number, s: string): void {
  w.uint32((field << 3) | 2).string(s);
}

function writeMessage(w: Writer, field: number, body: (w: Writer) => void): void {
  w.uint32((field << 3) | 2).fork();
  body(w);
  w.ldelim();
}

function writeShape(w: Writer, shape: Shape): void {
  // TensorShapeProto { repeated Dimension dim = 1 } ; Dimension { int64 dim_value = 1; string dim_param = 2 }
  writeMessage(w, 2, (w) => {
    for (const d of shape) {
      writeMessage(w, 1, (w) => {
        if (typeof d === "number") w.uint32(1 << 3).int64(d);
        else writeString(w, 2, d);
      });
    }
  });
}

function writeValueInfo(w: Writer, field: number, v: Value): void {
  // ValueInfoProto { name = 1; TypeProto type = 2 } ; TypeProto { Tensor tensor_type = 1; Sequence sequence_type = 4 }
  // Tensor { elem_type = 1; shape = 2 } ; Sequence { TypeProto elem_type = 1 }
  // A sequence's elements may differ in shape (one per parameter), so its element type has none.
  const sequence = v.graph.sequences.has(v.name);
  const tensorType = (w: Writer) =>
    writeMessage(w, 1, (w) => {
      w.uint32(1 << 3).int32(ONNX_DTYPE_CODE[v.dtype]);
      if (!sequence) writeShape(w, v.shape);
    });
  writeMessage(w, field, (w) => {
    writeString(w, 1, v.name);
    writeMessage(w, 2, (w) => {
      if (sequence) writeMessage(w, 4, (w) => writeMessage(w, 1, tensorType));
      else tensorType(w);
    });
  });
}

/** Where external tensors go: registered sources by reference, the rest into one generated blob. */
interface ExternalSink {
  /** Blob threshold; Infinity when only registered sources go external. */
  readonly threshold: number;
  readonly path: string;
  /** Tensors to copy into the blob, at their offsets (filled in once, at the end). */
  chunks: { offset: number; bytes: Uint8Array }[];
  offset: number;
  /** Registered sources referred to, by the name written into the model. */
  sources: Map<string, Uint8Array>;
}

function writeExternalRef(w: Writer, location: string, offset: number, length: number): void {
  const entries: [string, string][] = [
    ["location", location],
    ["offset", String(offset)],
    ["length", String(length)],
  ];
  for (const [k, v] of entries) {
    writeMessage(w, 13, (w) => {
      writeString(w, 1, k);
      writeString(w, 2, v);
    });
  }
  w.uint32(14 << 3).int32(1); // data_location = EXTERNAL
}

/** The name a source goes by in this model: its own, made unique if another source took it. */
function sourceName(sink: ExternalSink, src: { name: string; bytes: Uint8Array }): string {
  let name = src.name, k = 1;
  while (sink.sources.has(name) && sink.sources.get(name) !== src.bytes) name = `${src.name}.${k++}`;
  sink.sources.set(name, src.bytes);
  return name;
}

function writeTensor(w: Writer, field: number, name: string, t: TensorData, sink?: ExternalSink): void {
  writeMessage(w, field, (w) => {
    for (const d of t.shape) w.uint32(1 << 3).int64(d);
    w.uint32(2 << 3).int32(ONNX_DTYPE_CODE[t.dtype]);
    if (name) writeString(w, 8, name);
    const bytes = bytesOf(t.data);
    const src = sink && bytes.byteLength >= SOURCE_MIN_BYTES ? sourceOf(bytes) : undefined;
    if (sink && src) {
      writeExternalRef(w, sourceName(sink, src), bytes.byteOffset - src.bytes.byteOffset, bytes.byteLength);
    } else if (sink && bytes.byteLength >= sink.threshold) {
      // ORT reads external data at offsets aligned to 4 KiB more efficiently (mmap); pad each blob.
      sink.offset += (4096 - (sink.offset % 4096)) % 4096;
      writeExternalRef(w, sink.path, sink.offset, bytes.byteLength);
      sink.chunks.push({ offset: sink.offset, bytes });
      sink.offset += bytes.byteLength;
    } else {
      w.uint32((9 << 3) | 2).bytes(bytes);
    }
  });
}

function writeAttribute(w: Writer, name: string, a: Attribute, sink?: ExternalSink): void {
  writeMessage(w, 5, (w) => {
    writeString(w, 1, name);
    w.uint32(20 << 3).int32(ATTR_TYPE[a.type]);
    switch (a.type) {
      case "float":
        w.uint32((2 << 3) | 5).float(a.value);
        break;
      case "int":
        w.uint32(3 << 3).int64(a.value);
        break;
      case "string":
        w.uint32((4 << 3) | 2).bytes(new TextEncoder().encode(a.value));
        break;
      case "tensor":
        writeTensor(w, 5, "", a.value);
        break;
      case "graph":
        writeMessage(w, 6, (w) => writeGraphBody(w, a.value, sink));
        break;
      case "floats":
        for (const f of a.value) w.uint32((7 << 3) | 5).float(f);
        break;
      case "ints":
        for (const i of a.value) w.uint32(8 << 3).int64(i);
        break;
      case "strings":
        for (const s of a.value) w.uint32((9 << 3) | 2).bytes(new TextEncoder().encode(s));
        break;
    }
  });
}

function writeGraphBody(w: Writer, g: Graph, sink?: ExternalSink): void {
  // GraphProto { node = 1; name = 2; initializer = 5; input = 11; output = 12 }
  for (const n of g.nodes) {
    writeMessage(w, 1, (w) => {
      for (const i of n.inputs) writeString(w, 1, i);
      for (const o of n.outputs) writeString(w, 2, o);
      writeString(w, 3, n.name);
      writeString(w, 4, n.op);
      for (const [k, a] of Object.entries(n.attributes)) writeAttribute(w, k, a, sink);
      if (n.domain) writeString(w, 7, n.domain);
    });
  }
  writeString(w, 2, g.name);
  for (const [name, t] of g.initializers) writeTensor(w, 5, name, t, sink);
  for (const v of g.inputs) writeValueInfo(w, 11, v);
  for (const v of g.outputs) writeValueInfo(w, 12, v);
}

/** Checks that every node input is defined before use and every output is produced. */
export function validateGraph(g: Graph): void {
  const defined = new Set<string>([...g.inputs.map((v) => v.name), ...g.initializers.keys()]);
  for (const n of g.nodes) {
    for (const i of n.inputs) {
      if (i && !defined.has(i)) {
        throw new GraphError(`Node ${n.name} (${n.op}) uses ${JSON.stringify(i)} before it is defined`);
      }
    }
    for (const o of n.outputs) defined.add(o);
  }
  if (g.outputs.length === 0) throw new GraphError(`Graph ${g.name} has no outputs`);
  for (const o of g.outputs) {
    if (!defined.has(o.name)) throw new GraphError(`Graph output ${o.name} is never produced`);
  }
}

/**
 * Serializes a graph into ModelProto bytes and its external data: views into registered sources
 * always go by reference; other initializers go to a generated blob when `externalDataThreshold`
 * is set.
 */
export function serializeModel(g: Graph, options: SerializeOptions = {}): SerializedModel {
  validateGraph(g);
  if (options.inline && options.externalDataThreshold !== undefined) {
    throw new GraphError("serializeModel(): `inline` writes no external data; drop externalDataThreshold");
  }
  const sink: ExternalSink = {
    threshold: options.externalDataThreshold ?? Infinity,
    path: options.externalDataPath ?? "weights.bin",
    chunks: [],
    offset: 0,
    sources: new Map(),
  };
  const w = protobuf.Writer.create();
  // ModelProto { ir_version = 1; producer_name = 2; graph = 7; opset_import = 8 }
  w.uint32(1 << 3).int64(IR_VERSION);
  writeString(w, 2, options.producer ?? "exo-tune");
  writeMessage(w, 7, (w) => writeGraphBody(w, g, options.inline ? undefined : sink));
  const opsets = new Map<string, number>([["", options.opset ?? DEFAULT_OPSET], ...g.extraOpsets]);
  for (const [domain, version] of opsets) {
    writeMessage(w, 8, (w) => {
      if (domain) writeString(w, 1, domain);
      w.uint32(2 << 3).int64(version);
    });
  }
  const model = w.finish();
  const externalData: ExternalFile[] = [...sink.sources].map(([path, data]) => ({ path, data }));
  if (sink.chunks.length > 0) {
    if (sink.sources.has(sink.path)) {
      throw new GraphError(
        `External data file name ${sink.path} is taken by a source: choose another externalDataPath`,
      );
    }
    // One allocation, one copy per tensor.
    const data = new Uint8Array(sink.offset);
    for (const c of sink.chunks) data.set(c.bytes, c.offset);
    externalData.push({ path: sink.path, data });
  }
  return externalData.length > 0 ? { model, externalData } : { model };
}
