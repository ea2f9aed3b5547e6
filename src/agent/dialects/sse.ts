// Server-sent events from a fetch Response: yields one event per blank-line
// separated block (`event:` and joined `data:` lines). Comments and `id:` /
// `retry:` fields are ignored; reconnection is not supported (a broken stream
// is an error, not a resume).

import { type IdleGuard, ModelError } from './dialect.ts';

export interface SseEvent {
  readonly event: string | undefined;
  readonly data: string;
}

/** One event (its data) may not exceed this; a provider never sends more. */
const MAX_EVENT_CHARS = 8 * 1024 * 1024;

export async function* readSse(response: Response, idle: IdleGuard): AsyncGenerator<SseEvent> {
  if (!response.body) throw new ModelError('malformed', 'the model stream had no body');
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let event: string | undefined;
  let data: string[] = [];
  let dataChars = 0;
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (e) {
        throw idle.translate(e, 'the connection to the model gateway broke mid-stream');
      }
      if (chunk.done) {
        buffer += decoder.decode();
        if (buffer.length > 0) buffer += '\n';
      } else {
        idle.touch();
        buffer += decoder.decode(chunk.value, { stream: true });
      }
      let nl: number;
      while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + (buffer.startsWith('\r\n', nl) ? 2 : 1));
        if (line === '') {
          if (data.length > 0) yield { event, data: data.join('\n') };
          event = undefined;
          data = [];
          dataChars = 0;
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'event') event = value;
        else if (field === 'data') {
          dataChars += value.length;
          if (dataChars > MAX_EVENT_CHARS) throw new ModelError('malformed', 'the model stream sent an event over 8 MiB');
          data.push(value);
        }
      }
      if (buffer.length > MAX_EVENT_CHARS) throw new ModelError('malformed', 'the model stream sent a line over 8 MiB');
      if (chunk.done) {
        if (data.length > 0) yield { event, data: data.join('\n') };
        return;
      }
    }
  } finally {
    idle.done();
    reader.cancel().catch(() => {});
  }
}

export function parseEventJson(data: string, provider: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    throw new ModelError('malformed', `the ${provider} stream sent an event that is not JSON: ${JSON.stringify(data.slice(0, 120))}`);
  }
}
