/// <reference types="vite/client" />
// The renderer's `window` type comes from the preload's API object.
import type { PreloadApi } from '../../src/preload/preload-api.ts';

declare global {
  interface Window {
    /** Present inside the desktop app (exposed by the preload); absent in a browser. */
    readonly tether?: PreloadApi;
  }
}

export {};
