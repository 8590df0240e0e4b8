// Node `ws` client with permessage-deflate (context takeover, every message compressed) against a probe server.
// Usage: node deflate-client.mjs URL. Prints one JSON object with the outcome of every step.
import WebSocket from 'ws';
import { randomBytes } from 'node:crypto';

const url = process.argv[2];
const results = {};
const withTimeout = (p, ms, what) => Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error('timeout: ' + what)), ms))]);
const next = (ws) => new Promise((resolve) => ws.once('message', (data, isBinary) => resolve({ data, isBinary })));
const chat = (i) => JSON.stringify({ type: 'message', room: 'general', offset: i, from: 'alice', text: `hello number ${i}, how are you all doing today?` });

async function main() {
  const ws = await new Promise((resolve, reject) => {
    const s = new WebSocket(url, { maxPayload: 64 * 1024 * 1024, perMessageDeflate: { threshold: 0 } });
    s.once('open', () => resolve(s));
    s.once('error', reject);
  });
  results.extensions = ws.extensions;
  let m;
  ws.send('ext?'); m = await next(ws); results.serverAgreed = m.data.toString();
  const before = ws._socket.bytesRead;
  let same = true;
  for (let round = 0; round < 3; round++) {
    const text = Array.from({ length: 2000 }, (_, i) => chat(i + round)).join('\n');
    ws.send(text); m = await next(ws);
    same = same && !m.isBinary && m.data.toString() === text;
  }
  results.compressibleEcho = same;
  // About 600 KB of text came back; compressed it is a small fraction of that on the wire.
  results.wireBytesForEchoes = ws._socket.bytesRead - before;
  const noise = randomBytes(1024 * 1024);
  ws.send(noise); m = await next(ws); results.incompressibleEcho = m.isBinary && Buffer.compare(m.data, noise) === 0;
  ws.send('hi'); m = await next(ws); results.small = m.data.toString() === 'hi';
  const frag = Array.from({ length: 300 }, (_, i) => chat(i)).join('');
  ws.send(frag.slice(0, 5000), { fin: false, compress: true });
  ws.send(frag.slice(5000, 12000), { fin: false, compress: true });
  ws.send(frag.slice(12000), { fin: true, compress: true });
  m = await next(ws); results.fragmented = m.data.toString() === frag;
  const closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  ws.close(4001, 'bye from node');
  results.clientClose = await closed;
}

withTimeout(main(), 60000, 'scenario')
  .then(() => { console.log(JSON.stringify(results)); process.exit(0); })
  .catch((e) => { console.log(JSON.stringify({ ...results, error: String(e) })); process.exit(1); });
