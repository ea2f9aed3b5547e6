// The packaging hook flips the fuses in a real file laid out like an Electron
// binary's fuse wire (sentinel, version, length, states); the Electron binary
// itself is not available here.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FuseV1Options, getCurrentFuseWire } from '@electron/fuses';
import afterPack, { electronBinary } from '../../build/after-pack.ts';

const SENTINEL = 'dL7pKGdnNz796PbbjQWNKmHXBZaB9tsX';
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tether-fuses-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

// Electron's defaults: RunAsNode, NODE_OPTIONS, inspect args and file:// privileges on; integrity and asar-only off.
const DEFAULT_WIRE = '101100011';

async function fakeBinary(name: string, wire = DEFAULT_WIRE): Promise<string> {
  const path = join(dir, name);
  const head = Buffer.alloc(4096, 0x7f);
  const tail = Buffer.alloc(1024, 0x00);
  await writeFile(path, Buffer.concat([head, Buffer.from(SENTINEL), Buffer.from([1, wire.length]), Buffer.from(wire), tail]));
  return path;
}

const context = (appOutDir: string) => ({
  appOutDir, electronPlatformName: 'linux', arch: 1, packager: { appInfo: { productFilename: 'Tether' }, executableName: 'tether' },
});

describe('afterPack fuses', () => {
  it('turns RunAsNode, NODE_OPTIONS and inspect off and asar integrity and asar-only on', async () => {
    const out = join(dir, 'linux-unpacked');
    await (await import('node:fs/promises')).mkdir(out);
    const bin = await fakeBinary('linux-unpacked/tether');
    const before = await readFile(bin);
    await afterPack(context(out));
    const wire = await getCurrentFuseWire(bin);
    const state = (o: FuseV1Options) => String.fromCharCode(wire[o] as number);
    expect(state(FuseV1Options.RunAsNode)).toBe('0');
    expect(state(FuseV1Options.EnableNodeOptionsEnvironmentVariable)).toBe('0');
    expect(state(FuseV1Options.EnableNodeCliInspectArguments)).toBe('0');
    expect(state(FuseV1Options.EnableEmbeddedAsarIntegrityValidation)).toBe('1');
    expect(state(FuseV1Options.OnlyLoadAppFromAsar)).toBe('1');
    expect(state(FuseV1Options.GrantFileProtocolExtraPrivileges)).toBe('0');
    const after = await readFile(bin);
    expect(after.length).toBe(before.length);
    expect(after.subarray(0, 4096)).toEqual(before.subarray(0, 4096));
  });

  it('fails the build when the binary has a fuse Tether does not set', async () => {
    const out = join(dir, 'newer');
    await (await import('node:fs/promises')).mkdir(out);
    await fakeBinary('newer/tether', `${DEFAULT_WIRE}1`);
    await expect(afterPack(context(out))).rejects.toThrow(/strictlyRequireAllFuses/);
  });

  it('finds the binary for each platform', () => {
    const c = (p: string) => ({ ...context('/out'), electronPlatformName: p });
    expect(electronBinary(c('linux'))).toBe('/out/tether');
    expect(electronBinary(c('darwin'))).toBe('/out/Tether.app');
    expect(electronBinary(c('win32'))).toBe('/out/Tether.exe');
  });
});
