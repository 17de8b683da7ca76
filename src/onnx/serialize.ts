/**
 * Serialization of a {@link Graph} to ONNX `ModelProto` bytes with protobufjs's wire writer.
 *
 * Field numbers follow onnx.proto (IR version 8). Initializers above a size threshold can go to an
 * external-data blob that ORT Web takes through its `externalData` session option, so a model whose
 * weights exceed protobuf's 2 GB limit still loads.
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
  /** Producer name written into the model. */
  producer?: string;
}

/** A serialized model and, when asked for, its external weights. */
export interface SerializedModel {
  readonly model: Uint8Array;
  /** Present when some initializer went external: pass as ORT's `externalData: [{path, data}]`. */
  readonly externalData?: { readonly path: string; readonly data: Uint8Array };
}

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

interface ExternalSink {
  readonly threshold: number;
  readonly path: string;
  chunks: Uint8Array[];
  offset: number;
}

function writeTensor(w: Writer, field: number, name: string, t: TensorData, sink?: ExternalSink): void {
  writeMessage(w, field, (w) => {
    for (const d of t.shape) w.uint32(1 << 3).int64(d);
    w.uint32(2 << 3).int32(ONNX_DTYPE_CODE[t.dtype]);
    if (name) writeString(w, 8, name);
    const bytes = bytesOf(t.data);
    if (sink && bytes.byteLength >= sink.threshold) {
      // ORT reads external data at offsets aligned to 4 KiB more efficiently (mmap); pad each blob.
      const pad = (4096 - (sink.offset % 4096)) % 4096;
      if (pad) sink.chunks.push(new Uint8Array(pad));
      sink.offset += pad;
      const entries: [string, string][] = [
        ["location", sink.path],
        ["offset", String(sink.offset)],
        ["length", String(bytes.byteLength)],
      ];
      for (const [k, v] of entries) {
        writeMessage(w, 13, (w) => {
          writeString(w, 1, k);
          writeString(w, 2, v);
        });
      }
      w.uint32(14 << 3).int32(1); // data_location = EXTERNAL
      sink.chunks.push(bytes.slice());
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

/** Serializes a graph into ModelProto bytes (and optional external data). */
export function serializeModel(g: Graph, options: SerializeOptions = {}): SerializedModel {
  validateGraph(g);
  const sink: ExternalSink | undefined = options.externalDataThreshold !== undefined
    ? {
      threshold: options.externalDataThreshold,
      path: options.externalDataPath ?? "weights.bin",
      chunks: [],
      offset: 0,
    }
    : undefined;
  const w = protobuf.Writer.create();
  // ModelProto { ir_version = 1; producer_name = 2; graph = 7; opset_import = 8 }
  w.uint32(1 << 3).int64(IR_VERSION);
  writeString(w, 2, options.producer ?? "exo-tune");
  writeMessage(w, 7, (w) => writeGraphBody(w, g, sink));
  const opsets = new Map<string, number>([["", options.opset ?? DEFAULT_OPSET], ...g.extraOpsets]);
  for (const [domain, version] of opsets) {
    writeMessage(w, 8, (w) => {
      if (domain) writeString(w, 1, domain);
      w.uint32(2 << 3).int64(version);
    });
  }
  const model = w.finish();
  if (!sink || sink.chunks.length === 0) return { model };
  const data = new Uint8Array(sink.offset);
  let at = 0;
  for (const c of sink.chunks) {
    data.set(c, at);
    at += c.byteLength;
  }
  return { model, externalData: { path: sink.path, data } };
}
