/**
 * The example model `init --example` registers: real ONNX files, built here byte for byte so the
 * template's manifests can name their sha256 and `verify` passes on the store init fills. Each is
 * a logistic regression over the three features of the example's signature
 * (amount, merchant category, hour of day): is_fraud = sigmoid(input · W + B), opset 13, which
 * onnxruntime and KServe's ONNX runtime load as they are.
 */

/** The example model's name, and the versions the template's manifests describe. */
export const EXAMPLE_MODEL = 'fraud-detector';

export interface ExampleArtifact {
  version: number;
  fileName: string;
  bytes: Buffer;
}

const EXAMPLE_WEIGHTS: Array<{ version: number; weights: [number, number, number]; bias: number }> = [
  { version: 1, weights: [0.0021, 0.35, -0.08], bias: -2.4 },
  { version: 2, weights: [0.0025, 0.31, -0.11], bias: -2.1 },
];

/** Every artifact of the example, in version order. */
export function exampleArtifacts(): ExampleArtifact[] {
  return EXAMPLE_WEIGHTS.map((w) => ({
    version: w.version,
    fileName: 'model.onnx',
    bytes: logisticRegressionOnnx(w.weights, w.bias, `fraud-detector v${w.version}`),
  }));
}

// Protocol buffers, the few wire types ONNX's ModelProto needs.
const varint = (n: number | bigint): Buffer => {
  let v = BigInt(n);
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return Buffer.from(out);
};
const tag = (field: number, wire: number) => varint((field << 3) | wire);
const int = (field: number, n: number) => Buffer.concat([tag(field, 0), varint(n)]);
const bytesField = (field: number, b: Buffer) => Buffer.concat([tag(field, 2), varint(b.length), b]);
const str = (field: number, s: string) => bytesField(field, Buffer.from(s, 'utf8'));
const msg = (field: number, ...parts: Buffer[]) => bytesField(field, Buffer.concat(parts));

const FLOAT = 1;

function floatTensor(name: string, dims: number[], values: number[]): Buffer[] {
  const raw = Buffer.alloc(values.length * 4);
  values.forEach((x, i) => raw.writeFloatLE(x, i * 4));
  // TensorProto: dims (1), data_type (2), name (8), raw_data (9, little-endian).
  return [...dims.map((d) => int(1, d)), int(2, FLOAT), str(8, name), bytesField(9, raw)];
}

/** ValueInfoProto for a float tensor of shape [batch, width]. */
function floatInfo(field: number, name: string, width: number): Buffer {
  const shape = Buffer.concat([msg(1, str(2, 'batch')), msg(1, int(1, width))]);
  return msg(field, str(1, name), msg(2, msg(1, int(1, FLOAT), msg(2, shape))));
}

const node = (inputs: string[], output: string, op: string) =>
  msg(1, ...inputs.map((i) => str(1, i)), str(2, output), str(3, `${op.toLowerCase()}_${output}`), str(4, op));

/** An ONNX ModelProto: input [batch, 3] → MatMul W [3, 1] → Add B → Sigmoid → is_fraud [batch, 1]. */
function logisticRegressionOnnx(weights: number[], bias: number, docString: string): Buffer {
  const graph = Buffer.concat([
    node(['input', 'W'], 'logit_raw', 'MatMul'),
    node(['logit_raw', 'B'], 'logit', 'Add'),
    node(['logit'], 'is_fraud', 'Sigmoid'),
    str(2, 'fraud_detector'),
    msg(5, ...floatTensor('W', [weights.length, 1], weights)),
    msg(5, ...floatTensor('B', [1], [bias])),
    str(10, docString),
    floatInfo(11, 'input', weights.length),
    floatInfo(12, 'is_fraud', 1),
  ]);
  return Buffer.concat([
    int(1, 7), // ir_version 7 (ONNX 1.8+)
    str(2, 'modelgate-example'),
    str(3, '1'),
    bytesField(7, graph),
    msg(8, str(1, ''), int(2, 13)), // opset_import: the default domain, opset 13
  ]);
}
