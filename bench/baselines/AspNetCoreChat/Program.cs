// Baseline for the benchmarks: the seed chat contract (/ws) and an echo (/echo) written the idiomatic way on
// ASP.NET Core's built-in WebSockets (System.Net.WebSockets): a list of sockets, a per-socket send lock, and a
// broadcast that serializes the message and awaits each send in turn. Not part of Switchboard.
using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
var app = builder.Build();
app.UseWebSockets();
var clients = new ConcurrentDictionary<WebSocket, SemaphoreSlim>();

app.Map("/ws", async (HttpContext ctx) =>
{
    using WebSocket ws = await ctx.WebSockets.AcceptWebSocketAsync();
    var sendLock = new SemaphoreSlim(1, 1);
    clients[ws] = sendLock;
    var buffer = new byte[64 * 1024];
    try
    {
        while (true)
        {
            var ms = new MemoryStream();
            WebSocketReceiveResult r;
            do
            {
                r = await ws.ReceiveAsync(buffer, CancellationToken.None);
                if (r.MessageType == WebSocketMessageType.Close)
                {
                    return;
                }

                ms.Write(buffer, 0, r.Count);
            }
            while (!r.EndOfMessage);

            JsonObject message = JsonNode.Parse(ms.ToArray())!.AsObject();
            message["time"] = DateTime.Now.ToString("HH:mm:ss");
            byte[] bytes = Encoding.UTF8.GetBytes(message.ToJsonString());
            foreach (var (client, l) in clients)
            {
                await l.WaitAsync();
                try
                {
                    if (client.State == WebSocketState.Open)
                    {
                        await client.SendAsync(bytes, WebSocketMessageType.Text, true, CancellationToken.None);
                    }
                }
                catch (WebSocketException)
                {
                }
                finally
                {
                    l.Release();
                }
            }
        }
    }
    catch (WebSocketException)
    {
    }
    finally
    {
        clients.TryRemove(ws, out _);
    }
});

app.Map("/echo", async (HttpContext ctx) =>
{
    using WebSocket ws = await ctx.WebSockets.AcceptWebSocketAsync();
    var buffer = new byte[64 * 1024];
    try
    {
        while (true)
        {
            WebSocketReceiveResult r = await ws.ReceiveAsync(buffer, CancellationToken.None);
            if (r.MessageType == WebSocketMessageType.Close)
            {
                return;
            }

            await ws.SendAsync(buffer.AsMemory(0, r.Count), r.MessageType, r.EndOfMessage, CancellationToken.None);
        }
    }
    catch (WebSocketException)
    {
    }
});

app.Run();
