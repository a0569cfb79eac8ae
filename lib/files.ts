// Opening the files a model, tokenizer or adapter is read from. A FIFO (or a socket, a device)
// where a file is expected would block the open forever, waiting for a writer: every such path
// is opened without blocking and must turn out to be a regular file.
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { TunekitError } from './errors.js';

function kind(s: { isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isDirectory(): boolean }): string {
  return s.isFIFO() ? 'a FIFO (named pipe)' : s.isSocket() ? 'a socket' : s.isCharacterDevice() || s.isBlockDevice() ? 'a device' : s.isDirectory() ? 'a folder' : 'not a regular file';
}

/** Opens `file` for reading; refuses anything but a regular file, without blocking on a FIFO. */
export async function openRegularFile(file: string): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (e) {
    throw new TunekitError('ERR_TUNEKIT_IO', `${file}: ${(e as Error).message}`, { cause: e });
  }
  const s = await fh.stat();
  if (!s.isFile()) {
    await fh.close();
    throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `${file}: expected a regular file but it is ${kind(s)}`);
  }
  return fh;
}

/** A regular file's text (UTF-8). */
export async function readTextFile(file: string): Promise<string> {
  const fh = await openRegularFile(file);
  try {
    return await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
}
