// Node `ws` client that runs the interop scenario against a server speaking the probe protocol.
// Usage: node client.mjs URL. Prints one JSON object with the outcome of every step.
import WebSocket from 'ws';
import { randomBytes } from 'node:crypto';

const url = process.argv[2];
const results = {};
const withTimeout = (p, ms, what) => Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error('timeout: ' + what)), ms))]);

function open(u) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(u, { maxPayload: 64 * 1024 * 1024, perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}
const next = (ws) => new Promise((resolve) => ws.once('message', (data, isBinary) => resolve({ data, isBinary })));

async function main() {
  const ws = await open(url);
  let m;
  ws.send('hello'); m = await next(ws); results.text = !m.isBinary && m.data.toString() === 'hello';
  const bin = Buffer.from([0, 1, 2, 255]);
  ws.send(bin); m = await next(ws); results.binary = m.isBinary && Buffer.compare(m.data, bin) === 0;
  ws.send(''); m = await next(ws); results.emptyText = !m.isBinary && m.data.length === 0;
  ws.send(Buffer.alloc(0)); m = await next(ws); results.emptyBinary = m.isBinary && m.data.length === 0;
  ws.send('frag-', { fin: false }); ws.send('ment', { fin: true }); m = await next(ws);
  results.fragmented = !m.isBinary && m.data.toString() === 'frag-ment';
  const big = randomBytes(16 * 1024 * 1024);
  ws.send(big); m = await next(ws); results.big16MiB = m.isBinary && Buffer.compare(m.data, big) === 0;
  const pong = new Promise((resolve) => ws.once('pong', (p) => resolve(p.toString())));
  ws.ping('from-node'); results.clientPing = (await pong) === 'from-node';
  ws.send('ping:from-server'); m = await next(ws); results.serverPing = m.data.toString() === 'pong:from-server';
  ws.send('frag:3:abcdefgh'); m = await next(ws); results.serverFragmented = m.data.toString() === 'abcdefgh';
  const closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  ws.close(4001, 'bye from node');
  results.clientClose = await closed;

  const ws2 = await open(url.replace(/tag=[^&]*/, (t) => t + '-2'));
  const closed2 = new Promise((resolve) => ws2.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  ws2.send('close:4002:server bye');
  results.serverClose = await closed2;
}

withTimeout(main(), 60000, 'scenario')
  .then(() => { console.log(JSON.stringify(results)); process.exit(0); })
  .catch((e) => { console.log(JSON.stringify({ ...results, error: String(e) })); process.exit(1); });
