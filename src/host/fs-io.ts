// The system calls the workspace jail and the file effects make, each either
// in place (synchronous) or on libuv's thread pool, chosen by the caller.
//
// Why in place: on a local disk an lstat, open, fstat, readlink or a read of a
// few KB from the page cache takes 1–5 µs; the same call through the thread
// pool costs ~25 µs of CPU and one event-loop round trip (50–100 µs when the
// machine is busy), and a brokered read makes about a dozen of them. The price
// is that a slow call blocks the host's event loop while it runs: a cold read
// from a spinning disk (one seek, ~10 ms), a network or FUSE file system (a
// hung server, forever). So the jail uses calls in place only where
// `isLocalFileSystem` says the workspace is on a local file system (Linux; the
// thread pool everywhere else, where the volume type cannot be told reliably),
// only on the workspace's own device (a mount inside it goes back to the thread
// pool below its mount point), and only for data up to SYNC_MAX_BYTES. fsync
// always goes to the thread pool: it waits for the disk by design.
//
// Every function is async either way, so callers await both modes alike; the
// in-place branch costs a microtask, not an event-loop turn.

import * as fs from 'node:fs';
import type { BigIntStats, Stats } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { promisify } from 'node:util';

/** Largest read, write or hash done in place; bigger ones go to the thread pool. */
export const SYNC_MAX_BYTES = 256 * 1024;

// statfs(2) f_type of file systems whose calls can wait on a network, a
// cluster or a user-space server (the numbers gnulib's file_is_remote and
// coreutils' stat use), plus 9p (WSL2 drives, VM shares). Overlayfs is taken
// as local: containers put everything on it, and its layers almost always are.
const REMOTE_FS_TYPES = new Set<number>([
  0x61636673, // acfs
  0x5346414f, // afs
  0x00c36400, // ceph
  0xff534d42, // cifs
  0x73757245, // coda
  0x19830326, // fhgfs / beegfs
  0x65735546, // fuse (sshfs, rclone, virtiofs, …)
  0x65735543, // fusectl
  0x01161970, // gfs2
  0x47504653, // gpfs
  0x013111a8, // ibrix
  0x6b414653, // kafs
  0x0bd00bd0, // lustre
  0x0000564c, // ncp
  0x00006969, // nfs
  0x6e667364, // nfsd
  0x7461636f, // ocfs2
  0xaad7aaea, // panfs
  0x7c7c6673, // prl_fs (Parallels)
  0x0000517b, // smb
  0xfe534d42, // smb2
  0xbeefdead, // snfs
  0x786f4256, // vboxsf
  0xbacbacbc, // vmhgfs
  0xa501fcf5, // vxfs
  0x01021997, // 9p
]);

/** Whether calls in place are safe for `dir`: Linux, and its file system is not a network or FUSE one. */
export async function isLocalFileSystem(dir: string): Promise<boolean> {
  if (process.platform !== 'linux') return false;
  try {
    const st = await fsp.statfs(dir);
    return !REMOTE_FS_TYPES.has(st.type >>> 0);
  } catch {
    return false;
  }
}

const pOpen = promisify(fs.open);
const pClose = promisify(fs.close);
const pRead = promisify(fs.read);
const pWrite = promisify(fs.write);
const pFsync = promisify(fs.fsync);
const pFchmod = promisify(fs.fchmod);
const pFstatBig = (fd: number) => new Promise<BigIntStats>((resolve, reject) => fs.fstat(fd, { bigint: true }, (e, st) => (e ? reject(e) : resolve(st))));
const pFstat = (fd: number) => new Promise<Stats>((resolve, reject) => fs.fstat(fd, (e, st) => (e ? reject(e) : resolve(st))));

function isEnoent(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'ENOENT';
}

/** lstat with bigint fields; undefined when nothing is there (ENOENT). */
export async function lstatBig(p: string, sync: boolean): Promise<BigIntStats | undefined> {
  if (sync) return fs.lstatSync(p, { bigint: true, throwIfNoEntry: false });
  try {
    return await fsp.lstat(p, { bigint: true });
  } catch (e) {
    if (isEnoent(e)) return undefined;
    throw e;
  }
}

/** lstat with number fields; undefined when nothing is there (ENOENT). */
export async function lstatNum(p: string, sync: boolean): Promise<Stats | undefined> {
  if (sync) return fs.lstatSync(p, { throwIfNoEntry: false });
  try {
    return await fsp.lstat(p);
  } catch (e) {
    if (isEnoent(e)) return undefined;
    throw e;
  }
}

export async function readlink(p: string, sync: boolean): Promise<string> {
  return sync ? fs.readlinkSync(p) : fsp.readlink(p);
}

export async function openFd(p: string, flags: number, mode: number | undefined, sync: boolean): Promise<number> {
  return sync ? fs.openSync(p, flags, mode) : pOpen(p, flags, mode);
}

export async function closeFd(fd: number, sync: boolean): Promise<void> {
  if (sync) fs.closeSync(fd);
  else await pClose(fd);
}

export async function fstatBig(fd: number, sync: boolean): Promise<BigIntStats> {
  return sync ? fs.fstatSync(fd, { bigint: true }) : pFstatBig(fd);
}

export async function fstatNum(fd: number, sync: boolean): Promise<Stats> {
  return sync ? fs.fstatSync(fd) : pFstat(fd);
}

/** One read(2) at `position`; the bytes read. */
export async function readAt(fd: number, buf: Uint8Array, offset: number, length: number, position: number, sync: boolean): Promise<number> {
  if (sync) return fs.readSync(fd, buf, offset, length, position);
  return (await pRead(fd, buf, offset, length, position)).bytesRead;
}

/** Writes all of `data` from the file's start. */
export async function writeAll(fd: number, data: Uint8Array, sync: boolean): Promise<void> {
  for (let off = 0; off < data.length; ) {
    off += sync ? fs.writeSync(fd, data, off, data.length - off, off) : (await pWrite(fd, data, off, data.length - off, off)).bytesWritten;
  }
}

export async function fchmod(fd: number, mode: number, sync: boolean): Promise<void> {
  if (sync) fs.fchmodSync(fd, mode);
  else await pFchmod(fd, mode);
}

/** fsync, always on the thread pool: it waits for the disk. */
export function fsyncFd(fd: number): Promise<void> {
  return pFsync(fd);
}

export async function rename(from: string, to: string, sync: boolean): Promise<void> {
  if (sync) fs.renameSync(from, to);
  else await fsp.rename(from, to);
}

export async function mkdir(p: string, sync: boolean): Promise<void> {
  if (sync) fs.mkdirSync(p);
  else await fsp.mkdir(p);
}

export async function unlink(p: string, sync: boolean): Promise<void> {
  if (sync) fs.unlinkSync(p);
  else await fsp.unlink(p);
}
