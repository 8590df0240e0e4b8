// Node `ws` echo server speaking the interop probe protocol (see tests/interop/README.md).
// Prints "PORT <n>" once listening and "CLOSED <code> <reason>" when a client's connection closes.
import { WebSocketServer } from 'ws';

// `node server.mjs deflate` enables permessage-deflate (context takeover, every message compressed).
const deflate = process.argv[2] === 'deflate';
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 64 * 1024 * 1024, perMessageDeflate: deflate ? { threshold: 0 } : false });
wss.on('listening', () => console.log(`PORT ${wss.address().port}`));
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    if (!isBinary) {
      const text = data.toString();
      if (text.startsWith('ping:')) {
        ws.once('pong', (payload) => ws.send('pong:' + payload.toString()));
        ws.ping(text.slice(5));
        return;
      }
      if (text.startsWith('frag:')) {
        const [, n, ...rest] = text.split(':');
        const all = Buffer.from(rest.join(':'));
        const size = Math.ceil(all.length / Number(n));
        for (let i = 0; i < Number(n); i++) {
          ws.send(all.subarray(i * size, (i + 1) * size), { binary: false, fin: i === Number(n) - 1 });
        }
        return;
      }
      if (text === 'rx?') {
        ws.send(String(ws._socket.bytesRead)); // bytes received on the wire so far (shows whether the client compressed)
        return;
      }
      if (text.startsWith('close:')) {
        const [, code, ...rest] = text.split(':');
        ws.close(Number(code), rest.join(':'));
        return;
      }
    }
    ws.send(data, { binary: isBinary });
  });
  ws.on('close', (code, reason) => console.log(`CLOSED ${code} ${reason.toString()}`));
});
