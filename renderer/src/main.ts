// Renderer entry: connect to the host (preload API or dev bridge), then mount.
import { mount } from 'svelte';
import '@xterm/xterm/css/xterm.css';
import './styles.css';
import App from './App.svelte';
import Unavailable from './components/Unavailable.svelte';
import { AppState } from './lib/app-state.svelte.ts';
import { connectHost } from './lib/host-connection.ts';

const target = document.getElementById('app')!;
const connection = connectHost();
if (connection.ok) {
  const app = new AppState(connection.api);
  connection.onLost((reason) => {
    app.connection = 'lost';
    app.error = `Lost the connection to the host: ${reason}`;
  });
  mount(App, { target, props: { app, via: connection.via } });
  app.init().catch((e: Error) => {
    app.error = `Could not reach the host: ${e.message}`;
  });
} else {
  mount(Unavailable, { target, props: { message: connection.error } });
}
