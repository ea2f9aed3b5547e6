// electron-builder afterPack hook: flips Tether's fuses in the packaged
// Electron binary before it is signed and wrapped into installers.
import { join } from 'node:path';
import { flipFuses } from '@electron/fuses';
import { tetherFuses } from './electron-fuses.ts';

/** The part of electron-builder's AfterPackContext this hook reads. */
export interface AfterPackContextLike {
  readonly appOutDir: string;
  readonly electronPlatformName: string;
  readonly arch: number;
  readonly packager: { readonly appInfo: { readonly productFilename: string }; readonly executableName?: string };
}

// electron-builder's Arch enum: ia32, x64, armv7l, arm64, universal.
const ARCH = ['ia32', 'x64', 'armv7l', 'arm64', 'universal'];

export function electronBinary(context: AfterPackContextLike): string {
  const { appOutDir, electronPlatformName, packager } = context;
  switch (electronPlatformName) {
    case 'darwin':
    case 'mas':
      return join(appOutDir, `${packager.appInfo.productFilename}.app`);
    case 'win32':
      return join(appOutDir, `${packager.appInfo.productFilename}.exe`);
    default:
      return join(appOutDir, packager.executableName ?? packager.appInfo.productFilename);
  }
}

export default async function afterPack(context: AfterPackContextLike): Promise<void> {
  const binary = electronBinary(context);
  const arch = ARCH[context.arch] ?? 'unknown';
  const wires = await flipFuses(binary, tetherFuses(context.electronPlatformName, arch));
  console.log(`  • tether: fuses set in ${binary} (${wires} fuse wire${wires === 1 ? '' : 's'})`);
}
