/**
 * A minimal ONNX `ModelProto` reader: what checking and adapting training artifacts needs (graph
 * inputs and outputs with their types, nodes with their attributes, initializer names, opsets),
 * never tensor contents. Field numbers follow onnx.proto; unknown fields are skipped.
 *
 * @module
 */

import protobuf from "protobufjs/minimal.js";

/** A graph input or output. */
export interface ValueInfo {
  name: string;
  /** `tensor`, `sequence` (of tensors) or `other`. */
  kind: "tensor" | "sequence" | "other";
  /** TensorProto data type code of the tensor (or of the sequence's elements); 0 when absent. */
  elemType: number;
  /** Dims (numbers, or names of symbolic dims); null when the shape is absent. */
  shape: (number | string)[] | null;
}

/** An attribute value (only the kinds optimizer nodes use are decoded). */
export type AttributeValue = number | string | number[] | null;

/** A node. */
export interface NodeInfo {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, AttributeValue>;
}

/** What {@link readModel} returns. */
export interface ModelInfo {
  irVersion: number;
  opsets: Record<string, number>;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  nodes: NodeInfo[];
  /** Initializer name -> dims. */
  initializers: Map<string, number[]>;
}

type Reader = protobuf.Reader;

/** Reads messages of field `f` (wire type 2) and everything else via `onField`. */
function fields(r: Reader, end: number, onField: (field: number, wire: number) => boolean): void {
  while (r.pos < end) {
    const tag = r.uint32();
    const field = tag >>> 3, wire = tag & 7;
    if (!onField(field, wire)) r.skipType(wire);
  }
}

function sub(r: Reader): number {
  const len = r.uint32();
  return r.pos + len;
}

function readInt64s(r: Reader, wire: number, into: number[]): void {
  if (wire === 2) {
    const end = sub(r);
    while (r.pos < end) into.push(Number(r.int64()));
  } else into.push(Number(r.int64()));
}

function readTypeProto(r: Reader, end: number, info: ValueInfo): void {
  fields(r, end, (f) => {
    if (f === 1) {
      info.kind = "tensor";
      readTensorType(r, sub(r), info);
      return true;
    }
    if (f === 4) {
      info.kind = "sequence";
      const e = sub(r);
      fields(r, e, (g) => {
        if (g !== 1) return false;
        const inner: ValueInfo = { name: "", kind: "other", elemType: 0, shape: null };
        readTypeProto(r, sub(r), inner);
        info.elemType = inner.elemType;
        info.shape = inner.shape;
        return true;
      });
      return true;
    }
    if (f === 2 || f === 5) info.kind = "other";
    return false;
  });
}

function readTensorType(r: Reader, end: number, info: ValueInfo): void {
  fields(r, end, (f) => {
    if (f === 1) {
      info.elemType = r.int32();
      return true;
    }
    if (f === 2) {
      const shape: (number | string)[] = [];
      fields(r, sub(r), (g) => {
        if (g !== 1) return false;
        let dim: number | string = "?";
        fields(r, sub(r), (h) => {
          if (h === 1) dim = Number(r.int64());
          else if (h === 2) dim = r.string();
          else return false;
          return true;
        });
        shape.push(dim);
        return true;
      });
      info.shape = shape;
      return true;
    }
    return false;
  });
}

function readValueInfo(r: Reader, end: number): ValueInfo {
  const info: ValueInfo = { name: "", kind: "other", elemType: 0, shape: null };
  fields(r, end, (f) => {
    if (f === 1) info.name = r.string();
    else if (f === 2) readTypeProto(r, sub(r), info);
    else return false;
    return true;
  });
  return info;
}

function readAttribute(r: Reader, end: number): [string, AttributeValue] {
  let name = "";
  let value: AttributeValue = null;
  const list: number[] = [];
  fields(r, end, (f, wire) => {
    switch (f) {
      case 1:
        name = r.string();
        return true;
      case 2:
        value = r.float();
        return true;
      case 3:
        value = Number(r.int64());
        return true;
      case 4:
        value = new TextDecoder().decode(r.bytes());
        return true;
      case 7:
        if (wire === 2) {
          const e = sub(r);
          while (r.pos < e) list.push(r.float());
        } else list.push(r.float());
        value = list;
        return true;
      case 8:
        readInt64s(r, wire, list);
        value = list;
        return true;
      default:
        return false;
    }
  });
  return [name, value];
}

function readNode(r: Reader, end: number): NodeInfo {
  const n: NodeInfo = { name: "", opType: "", domain: "", inputs: [], outputs: [], attributes: {} };
  fields(r, end, (f) => {
    if (f === 1) n.inputs.push(r.string());
    else if (f === 2) n.outputs.push(r.string());
    else if (f === 3) n.name = r.string();
    else if (f === 4) n.opType = r.string();
    else if (f === 7) n.domain = r.string();
    else if (f === 5) {
      const [k, v] = readAttribute(r, sub(r));
      n.attributes[k] = v;
    } else return false;
    return true;
  });
  return n;
}

/** Reads a serialized model. Throws an error naming `source` when the bytes are not a ModelProto. */
export function readModel(bytes: Uint8Array, source = "model"): ModelInfo {
  const m: ModelInfo = { irVersion: 0, opsets: {}, inputs: [], outputs: [], nodes: [], initializers: new Map() };
  const r = protobuf.Reader.create(bytes);
  let sawGraph = false;
  try {
    fields(r, bytes.length, (f) => {
      if (f === 1) m.irVersion = Number(r.int64());
      else if (f === 8) {
        let domain = "", version = 0;
        fields(r, sub(r), (g) => {
          if (g === 1) domain = r.string();
          else if (g === 2) version = Number(r.int64());
          else return false;
          return true;
        });
        m.opsets[domain] = version;
      } else if (f === 7) {
        sawGraph = true;
        // A repeated occurrence of `graph` merges into the first (protobuf semantics).
        fields(r, sub(r), (g) => {
          if (g === 1) m.nodes.push(readNode(r, sub(r)));
          else if (g === 11) m.inputs.push(readValueInfo(r, sub(r)));
          else if (g === 12) m.outputs.push(readValueInfo(r, sub(r)));
          else if (g === 5) {
            const e = sub(r);
            let name = "";
            const dims: number[] = [];
            fields(r, e, (h, wire) => {
              if (h === 8) name = r.string();
              else if (h === 1) readInt64s(r, wire, dims);
              else return false;
              return true;
            });
            m.initializers.set(name, dims);
          } else return false;
          return true;
        });
      } else return false;
      return true;
    });
  } catch (e) {
    throw new Error(`${source}: not a valid ONNX model (${(e as Error).message})`);
  }
  if (!sawGraph) throw new Error(`${source}: not an ONNX model (no graph)`);
  return m;
}
