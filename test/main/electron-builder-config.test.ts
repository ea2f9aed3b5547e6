// electron-builder.yml is checked against electron-builder's own schema, and
// for what Tether needs from it: every installer target, the fuse hook, no
// secrets in the file.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const require = createRequire(join(root, 'package.json'));
const yaml = require('js-yaml') as { load(s: string): unknown };
const text = readFileSync(join(root, 'electron-builder.yml'), 'utf8');
const config = yaml.load(text) as Record<string, Record<string, unknown>>;

describe('electron-builder.yml', () => {
  it('passes electron-builder\'s schema validation', async () => {
    const { validateConfiguration } = require('app-builder-lib/out/util/config/config') as { validateConfiguration(c: unknown, l: unknown): Promise<void> };
    const { DebugLogger } = require('builder-util') as { DebugLogger: new (enabled: boolean) => unknown };
    await expect(validateConfiguration(config, new DebugLogger(false))).resolves.toBeUndefined();
  });

  it('builds deb, rpm, AppImage, dmg + pkg and nsis + msi', () => {
    expect(config['linux']!['target']).toEqual(['deb', 'rpm', 'AppImage']);
    expect(config['mac']!['target']).toEqual(['dmg', 'pkg']);
    expect(config['win']!['target']).toEqual(['nsis', 'msi']);
  });

  it('flips fuses in the afterPack hook, and the hook exists', () => {
    expect(config['afterPack']).toBe('./build/after-pack.ts');
    expect(existsSync(join(root, 'build', 'after-pack.ts'))).toBe(true);
    expect(config['electronFuses']).toBeUndefined();
  });

  it('keeps signing secrets out of the file (they come from the environment)', () => {
    expect(text).not.toMatch(/(cscKeyPassword|certificatePassword|appleIdPassword|CSC_KEY_PASSWORD)\s*:/i);
    expect(config['mac']!['notarize']).toBe(true);
    expect(config['mac']!['hardenedRuntime']).toBe(true);
  });
});
