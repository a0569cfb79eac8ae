// GGUF (llama.cpp's model file, version 2 and 3): value types, tensor types and their sizes.
// Layout: "GGUF", u32 version, u64 tensor count, u64 metadata count, metadata key/values,
// tensor infos (name, dims with ne[0] the fastest-varying, type, offset), then the data section
// at the next multiple of general.alignment (default 32). All little-endian.

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32

export enum GgufValueType {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
}

export type GgufValue = number | bigint | boolean | string | GgufValue[];

/** ggml tensor types: [name, elements per block, bytes per block]. Sizes let any file be listed. */
export const GGML_TYPES: Record<number, [string, number, number]> = {
  0: ['F32', 1, 4], 1: ['F16', 1, 2], 2: ['Q4_0', 32, 18], 3: ['Q4_1', 32, 20], 6: ['Q5_0', 32, 22],
  7: ['Q5_1', 32, 24], 8: ['Q8_0', 32, 34], 9: ['Q8_1', 32, 36], 10: ['Q2_K', 256, 84], 11: ['Q3_K', 256, 110],
  12: ['Q4_K', 256, 144], 13: ['Q5_K', 256, 176], 14: ['Q6_K', 256, 210], 15: ['Q8_K', 256, 292], 20: ['IQ4_NL', 32, 18], 23: ['IQ4_XS', 256, 136],
  24: ['I8', 1, 1], 25: ['I16', 1, 2], 26: ['I32', 1, 4], 27: ['I64', 1, 8], 28: ['F64', 1, 8], 30: ['BF16', 1, 2],
};

export interface GgufTensorInfo {
  name: string;
  /** ggml type name, e.g. 'Q4_0'. */
  type: string;
  /** Row-major shape (GGUF's dims reversed: the last dimension is contiguous). */
  shape: number[];
  /** Absolute byte offset in the file. */
  offset: number;
  byteLength: number;
}
