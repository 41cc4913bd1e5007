// Types of the untyped decompressors src/scan/decompress.ts uses.
declare module 'unbzip2-stream' {
  const bz2: () => NodeJS.ReadWriteStream;
  export default bz2;
}
declare module 'lzma/src/lzma-d.js' {
  const decoder: { LZMA: { decompress(input: Uint8Array, onFinish: (result: string | number[] | null, error?: unknown) => void): void } };
  export default decoder;
}
declare module 'lz4js' {
  export function decompress(input: Uint8Array, maxSize?: number): Uint8Array;
}
