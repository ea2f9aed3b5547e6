// The Electron fuses Tether ships with (flipped in the packaged binary by
// after-pack.ts). Every fuse is set explicitly, so an Electron upgrade that
// adds one fails the build instead of shipping its default.
//
// Not covered by fuses: EnableEmbeddedAsarIntegrityValidation is enforced by
// Electron on macOS and Windows only; on Linux the package manager's
// signatures are what protects app.asar.

import { FuseV1Options, FuseVersion, type FuseConfig } from '@electron/fuses';

export function tetherFuses(platform: string, arch: string): FuseConfig {
  return {
    version: FuseVersion.V1,
    strictlyRequireAllFuses: true,
    // The binary must not double as a Node interpreter or debugger for someone else's code.
    [FuseV1Options.RunAsNode]: false,
    [FuseV1Options.EnableNodeOptionsEnvironmentVariable]: false,
    [FuseV1Options.EnableNodeCliInspectArguments]: false,
    // Only our signed app.asar, checked against the hash embedded at build time.
    [FuseV1Options.EnableEmbeddedAsarIntegrityValidation]: true,
    [FuseV1Options.OnlyLoadAppFromAsar]: true,
    [FuseV1Options.EnableCookieEncryption]: true,
    [FuseV1Options.LoadBrowserProcessSpecificV8Snapshot]: false,
    // The renderer comes from tether://, never file://.
    [FuseV1Options.GrantFileProtocolExtraPrivileges]: false,
    [FuseV1Options.WasmTrapHandlers]: true,
    // Flipping fuses breaks the ad-hoc signature of an arm64 macOS build; re-sign it (real signing follows).
    resetAdHocDarwinSignature: platform === 'darwin' && arch === 'arm64',
  };
}
