// What the pages need of AudioWorklet itself: whether the browser has it, what to say when it
// has not, and loading the processor modules (static/js/worklets/) the worklet nodes run.

import { gettext } from './i18n.js';

export function audioWorkletSupported() {
  return (
    typeof window.AudioContext === 'function' &&
    typeof window.AudioWorkletNode === 'function' &&
    'audioWorklet' in AudioContext.prototype
  );
}

export const UNSUPPORTED_AUDIO_MESSAGE = gettext(
  'This browser cannot run the audio engine (it lacks AudioWorklet). Use a current Chrome, Edge, Firefox or Safari.',
);

// Loads processor modules into a context, all at once, before their nodes are created. The URLs
// come from the template ({% static %}), never a Blob: the CSP allows our own origin only.
export async function registerWorklets(context, ...moduleUrls) {
  await Promise.all(moduleUrls.map((url) => context.audioWorklet.addModule(url)));
}
