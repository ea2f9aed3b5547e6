// Links the renderer asks to open go to the system browser only if they are
// plain http(s) with no credentials; everything else is refused.

import { isSafeExternalUrl } from '../host/app-service.ts';

export interface ShellLike {
  openExternal(url: string): Promise<void>;
}

export async function openExternalSafely(shell: ShellLike, url: string): Promise<boolean> {
  if (!isSafeExternalUrl(url)) return false;
  try {
    await shell.openExternal(new URL(url).href);
    return true;
  } catch {
    return false;
  }
}
