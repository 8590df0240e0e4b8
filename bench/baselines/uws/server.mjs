// Native anchor for the benchmarks: the seed chat contract (/ws) and an echo (/echo) on uWebSockets (C++, through
// its Node binding uWebSockets.js), broadcasting with its own publish to a topic: every socket of a loop iteration
// is corked, so what is published to a member within one iteration leaves in one write. Usage: node server.mjs PORT
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const binary = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
let uWS;
try {
  uWS = require(`@trufflesuite/uws-js-unofficial/binaries/${binary}`);
} catch (e) {
  console.error(`uWebSockets.js has no ${binary} for Node ${process.version} (it is built for Node 16, 18 and 20): ${e.message}`);
  process.exit(1);
}

const port = Number(process.argv[2] || 8000);
const pad = (n) => String(n).padStart(2, '0');
const decoder = new TextDecoder();
const settings = { compression: uWS.DISABLED, maxPayloadLength: 16 * 1024 * 1024, idleTimeout: 0, maxBackpressure: 64 * 1024 * 1024 };
const app = uWS.App();

app.ws('/ws', {
  ...settings,
  open: (ws) => ws.subscribe('chat'),
  message: (ws, data) => {
    const message = JSON.parse(decoder.decode(data));
    const d = new Date();
    message.time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    app.publish('chat', JSON.stringify(message), false);
  },
});

app.ws('/echo', {
  ...settings,
  message: (ws, data, isBinary) => ws.send(data, isBinary),
});

app.listen('127.0.0.1', port, (token) => {
  if (!token) {
    console.error(`cannot listen on ${port}`);
    process.exit(1);
  }
  console.log(`listening on ${port}`);
});
