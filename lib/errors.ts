// TunekitError: the one error type the library throws, with a stable `code`.
// Native failures arrive as plain Errors carrying ERR_TUNEKIT_* codes; callNative re-throws them
// as TunekitError with the caller's own stack (captured before the async hop, as sharp does).

export type TunekitErrorCode =
  | 'ERR_TUNEKIT_INVALID_ARGUMENT'
  | 'ERR_TUNEKIT_OUT_OF_MEMORY'
  | 'ERR_TUNEKIT_UNSUPPORTED'
  | 'ERR_TUNEKIT_INTERNAL'
  | 'ERR_TUNEKIT_CORRUPT_FILE'
  | 'ERR_TUNEKIT_IO'
  | 'ERR_TUNEKIT_NUMERIC';

export class TunekitError extends Error {
  readonly code: TunekitErrorCode;
  constructor(code: TunekitErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TunekitError';
    this.code = code;
  }
}

function isNativeError(e: unknown): e is Error & { code: TunekitErrorCode } {
  const code = (e as { code?: unknown } | null)?.code;
  return e instanceof Error && typeof code === 'string' && code.startsWith('ERR_TUNEKIT_');
}

/** Converts an error thrown by the addon; `site` supplies the stack of the user's call. */
export function fromNative(e: unknown, site?: Error): unknown {
  if (e instanceof TunekitError || !isNativeError(e)) return e;
  const err = new TunekitError(e.code, e.message);
  if (site?.stack) err.stack = `TunekitError: ${e.message}\n${site.stack.split('\n').slice(1).join('\n')}`;
  return err;
}

/** Runs a synchronous addon call, re-typing its errors. */
export function callNative<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw fromNative(e, new Error());
  }
}

/** Awaits an asynchronous addon call, re-typing its errors with the caller's stack. */
export async function awaitNative<T>(start: () => Promise<T>): Promise<T> {
  const site = new Error();
  try {
    return await start();
  } catch (e) {
    throw fromNative(e, site);
  }
}
