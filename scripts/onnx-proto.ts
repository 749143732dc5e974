/**
 * The ONNX protobuf writer shared by the model build scripts (scripts/build-news2-model.ts,
 * scripts/build-deterioration-model.ts): the subset of onnx.proto they write, tensor/value-info/node builders, and
 * `encodeModel`, which checks a model object against the schema and returns its bytes. protobufjs encodes fields in
 * field-number order and nothing here carries a time or a host detail, so the same object gives the same bytes on
 * every run and every machine.
 *
 * @example
 * const bytes = encodeModel({ ir_version: IR_VERSION, opset_import: [{ domain: '', version: OPSET }], graph });
 */
import { createHash } from 'node:crypto';
import protobuf from 'protobufjs';

export const OPSET = 17;
/** IR version 8 goes with opset 17 (ONNX 1.12); onnxruntime-node 1.30 reads it. */
export const IR_VERSION = 8;

// The subset of onnx.proto (proto2) these scripts write. Field numbers and enum values are those of upstream ONNX.
export const ONNX_SUBSET = `
syntax = "proto2";
package onnx;
message AttributeProto {
  enum AttributeType { UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5; FLOATS = 6; INTS = 7; }
  optional string name = 1;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional TensorProto t = 5;
  repeated float floats = 7;
  repeated int64 ints = 8;
  optional AttributeType type = 20;
}
message ValueInfoProto {
  optional string name = 1;
  optional TypeProto type = 2;
  optional string doc_string = 3;
}
message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  repeated AttributeProto attribute = 5;
  optional string doc_string = 6;
  optional string domain = 7;
}
message ModelProto {
  optional int64 ir_version = 1;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional string domain = 4;
  optional int64 model_version = 5;
  optional string doc_string = 6;
  optional GraphProto graph = 7;
  repeated OperatorSetIdProto opset_import = 8;
  repeated StringStringEntryProto metadata_props = 14;
}
message StringStringEntryProto {
  optional string key = 1;
  optional string value = 2;
}
message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  optional string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
}
message TensorProto {
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  optional string name = 8;
  optional bytes raw_data = 9;
  optional string doc_string = 12;
}
message TensorShapeProto {
  message Dimension {
    oneof value {
      int64 dim_value = 1;
      string dim_param = 2;
    }
  }
  repeated Dimension dim = 1;
}
message TypeProto {
  message Tensor {
    optional int32 elem_type = 1;
    optional TensorShapeProto shape = 2;
  }
  oneof value {
    Tensor tensor_type = 1;
  }
}
message OperatorSetIdProto {
  optional string domain = 1;
  optional int64 version = 2;
}
`;

/** TensorProto.DataType values. */
export const FLOAT = 1;
export const INT64 = 7;
/** AttributeProto.AttributeType values. */
export const ATTR_INT = 2;
export const ATTR_INTS = 7;

/** A tensor dimension: a fixed size or a symbolic name (`N`). */
export type Dim = number | string;

/** A float32 initializer (little-endian raw_data). */
export function float32Tensor(name: string, dims: number[], values: ArrayLike<number>) {
  const data = Float32Array.from(values);
  // raw_data is little-endian by the ONNX spec: write it explicitly, whatever the host's byte order.
  const raw = Buffer.alloc(data.length * 4);
  for (let i = 0; i < data.length; i++) raw.writeFloatLE(data[i]!, i * 4);
  return { name, dims, data_type: FLOAT, raw_data: raw };
}

/** An int64 initializer (little-endian raw_data). */
export function int64Tensor(name: string, dims: number[], values: readonly number[]) {
  const raw = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => {
    raw.writeBigInt64LE(BigInt(v), i * 8);
  });
  return { name, dims, data_type: INT64, raw_data: raw };
}

/** A float32 graph input or output. */
export function valueInfo(name: string, dims: Dim[], doc: string) {
  return {
    name,
    doc_string: doc,
    type: {
      tensor_type: {
        elem_type: FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

/** A node named after its first output (unique in the graphs these scripts write). */
export function node(op_type: string, input: string[], output: string[], attribute: object[] = []) {
  return { op_type, input, output, name: output[0], attribute };
}

let modelProto: protobuf.Type | null = null;

/** The bytes of an ONNX ModelProto given as a plain object (keepCase field names); throws on an invalid object. */
export function encodeModel(model: Record<string, unknown>): Uint8Array {
  modelProto ??= protobuf.parse(ONNX_SUBSET, { keepCase: true }).root.lookupType('onnx.ModelProto');
  const problem = modelProto.verify(model);
  if (problem) throw new Error(`onnx model object is invalid: ${problem}`);
  return modelProto.encode(modelProto.fromObject(model)).finish();
}

export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}
