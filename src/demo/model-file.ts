/**
 * A real model file without training anything: a logistic-regression scorer's weights in the
 * safetensors format (an 8-byte little-endian header length, a JSON header, raw tensors),
 * which any safetensors loader reads.
 */
export function logisticRegressionSafetensors(weights: number[], bias: number, metadata: Record<string, string>): Buffer {
  const w = Buffer.alloc(weights.length * 4);
  weights.forEach((x, i) => w.writeFloatLE(x, i * 4));
  const b = Buffer.alloc(4);
  b.writeFloatLE(bias, 0);
  const header = {
    __metadata__: metadata,
    weight: { dtype: 'F32', shape: [1, weights.length], data_offsets: [0, w.length] },
    bias: { dtype: 'F32', shape: [1], data_offsets: [w.length, w.length + b.length] },
  };
  let json = JSON.stringify(header);
  // The format pads the header with spaces so tensors start 8-byte aligned.
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([len, Buffer.from(json), w, b]);
}
