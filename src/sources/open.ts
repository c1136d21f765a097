// Opening the files of --path.procfs (or a capture) without ever blocking on one that is not a
// file: a FIFO put in its place blocks open() until a writer comes, and that inside one of libuv's
// four threads, which every file read of the process shares.

import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/** Opens a regular file for reading; rejects (ENOTREG-like, naming it) anything else. */
export async function openRegularFile(path: string): Promise<FileHandle> {
  // O_NONBLOCK: open() of a FIFO returns at once instead of waiting for a writer. It changes
  // nothing for a regular file, whose reads never return EAGAIN.
  const file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stat = await file.stat();
    if (!stat.isFile()) throw Object.assign(new Error(`${path} is not a regular file (a FIFO, device or directory)`), { code: 'ENOTREG' });
    return file;
  } catch (e) {
    await file.close();
    throw e;
  }
}
