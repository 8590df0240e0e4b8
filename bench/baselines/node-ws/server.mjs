// Baseline for the benchmarks: the seed chat contract (/ws) and an echo (/echo) on Node `ws`, written the way its
// README shows broadcasting. Usage: node server.mjs PORT
import { WebSocketServer, WebSocket } from 'ws';
import http from 'node:http';

const port = Number(process.argv[2] || 8000);
const server = http.createServer();
const chat = new WebSocketServer({ noServer: true, perMessageDeflate: false });
const echo = new WebSocketServer({ noServer: true, perMessageDeflate: false });

server.on('upgrade', (req, socket, head) => {
  const target = req.url.startsWith('/ws') ? chat : req.url.startsWith('/echo') ? echo : null;
  if (!target) { socket.destroy(); return; }
  target.handleUpgrade(req, socket, head, (ws) => target.emit('connection', ws, req));
});

const pad = (n) => String(n).padStart(2, '0');
chat.on('connection', (ws) => {
  ws.on('message', (data) => {
    const message = JSON.parse(data);
    const d = new Date();
    message.time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    const text = JSON.stringify(message);
    for (const client of chat.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(text);
    }
  });
});

echo.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});

server.listen(port, '127.0.0.1', () => console.log(`listening on ${port}`));
