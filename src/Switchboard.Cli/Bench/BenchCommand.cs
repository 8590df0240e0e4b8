using System.Buffers;
using System.Buffers.Text;
using System.CommandLine;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Switchboard.Hub.Messages;
using Switchboard.Protocol;
using Switchboard.WebSockets;

namespace Switchboard.Cli.Bench;

/// <summary>The outcome of one benchmark run (printed as a table, or as JSON with --json).</summary>
internal sealed record BenchResult(
    string Scenario, string Url, int Clients, double Seconds, long Sent, long Received, long Expected, long Lost,
    double Throughput, long P50Us, long P90Us, long P99Us, long MaxUs,
    double? ServerCpuSeconds, double? ServerCpuUsPerUnit, string Unit, long? ServerRssBytes, double? RssPerConnectionKiB,
    double GeneratorCpuSeconds, double GeneratorCpuShare, int GeneratorCpus);

/// <summary>`switchboard bench`: a load generator (echo, broadcast, connections) for Switchboard and other servers.</summary>
internal static class BenchCommand
{
    private static readonly byte[] Marker = "B|"u8.ToArray();

    public static Command Create()
    {
        var command = new Command("bench", "Load generator: echo, broadcast and idle-connection scenarios (docs/benchmarks.md)");
        command.Subcommands.Add(Echo());
        command.Subcommands.Add(Broadcast());
        command.Subcommands.Add(Connections());
        return command;
    }

    private sealed class Common
    {
        public Argument<string> Url { get; } = new("url") { Description = "WebSocket endpoint, e.g. ws://127.0.0.1:8000/echo" };
        public Option<int> Clients { get; } = new("--clients") { Description = "Connections", DefaultValueFactory = _ => 50 };
        public Option<double> Duration { get; } = new("--duration") { Description = "Seconds of measurement", DefaultValueFactory = _ => 10 };
        public Option<int?> ServerPid { get; } = new("--server-pid") { Description = "Server process id, for CPU and RSS from /proc" };
        public Option<bool> Json { get; } = new("--json") { Description = "Print the result as one JSON object" };
        public Option<bool> Deflate { get; } = new("--deflate") { Description = "Offer permessage-deflate (the clients compress what they send, too)" };
        public Option<double> WarmUpSeconds { get; } = new("--warmup-seconds") { Description = "Seconds of load before measuring (code reaches its optimized tier on every server; not counted)", DefaultValueFactory = _ => 3 };
        public Option<int> SourceAddresses { get; } = new("--source-addresses")
        {
            Description = $"Connect from this many local addresses 127.0.0.1, 127.0.0.2, ... (IPv4 loopback servers only; 0: one per {ConnectionsPerSourceAddress:N0} connections)",
            DefaultValueFactory = _ => 0,
        };

        /// <summary>
        /// Settings every scenario applies before its first socket: compression, source addresses, and inline
        /// completions (the load generator loads its one core as little as possible).
        /// </summary>
        public void Prepare(ParseResult parse)
        {
            s_deflate = parse.GetValue(Deflate);
            s_sources = SourceAddressesFor(new Uri(parse.GetValue(Url)!), parse.GetValue(Clients), parse.GetValue(SourceAddresses));
            InlineCompletions.EnableUnlessSet();
        }

        public void AddTo(Command c)
        {
            c.Options.Add(Deflate);
            c.Arguments.Add(Url);
            c.Options.Add(Clients);
            c.Options.Add(Duration);
            c.Options.Add(ServerPid);
            c.Options.Add(Json);
            c.Options.Add(SourceAddresses);
            c.Validators.Add(result =>
            {
                int requested = result.GetValue(SourceAddresses);
                if (requested is < 0 or > 254)
                {
                    result.AddError("--source-addresses must be between 0 and 254.");
                }
                else if (requested > 1 && Uri.TryCreate(result.GetValue(Url), UriKind.Absolute, out Uri? url) && !IsIPv4Loopback(url))
                {
                    result.AddError("--source-addresses spreads connections over 127.0.0.x: the server must be at an IPv4 loopback address (e.g. ws://127.0.0.1:8000/).");
                }
            });
        }
    }

    /// <summary>
    /// Connections per local address when spreading them automatically: well inside the half of Linux's ephemeral
    /// port range (even ports, ~14,000) that connect() searches first. Past it, every connect() to the same server
    /// scans that whole half before trying the other one, and the load generator, not the server, sets the pace:
    /// 19,000 connections from one address took 5.8 s here, with the server idle 70% of the time.
    /// </summary>
    private const int ConnectionsPerSourceAddress = 8000;

    /// <summary>Local addresses the connections are spread over (round robin); empty: the operating system's choice.</summary>
    private static IPAddress[] s_sources = [];

    private static bool IsIPv4Loopback(Uri url) =>
        IPAddress.TryParse(url.Host, out IPAddress? host) && host.AddressFamily == AddressFamily.InterNetwork && IPAddress.IsLoopback(host);

    /// <summary>The addresses for <paramref name="clients"/> connections (the command's validator has checked <paramref name="requested"/>).</summary>
    private static IPAddress[] SourceAddressesFor(Uri url, int clients, int requested)
    {
        int count = requested > 0 ? requested : IsIPv4Loopback(url) ? (clients + ConnectionsPerSourceAddress - 1) / ConnectionsPerSourceAddress : 0;
        return count <= 1 ? [] : [.. Enumerable.Range(1, count).Select(i => new IPAddress([127, 0, 0, (byte)i]))];
    }

    /// <summary>Messages stamped before this timestamp were sent during the warm-up: delivered, but not measured.</summary>
    private static long s_measureFrom;

    private const long NotStamped = -1, WarmUp = -2;

    /// <summary>
    /// Finds "B|&lt;timestamp&gt;|" in a payload and returns the latency since then, in microseconds;
    /// <see cref="NotStamped"/> without a stamp, <see cref="WarmUp"/> for a message sent during the warm-up.
    /// </summary>
    private static long LatencyUs(ReadOnlySequence<byte> data, long now)
    {
        ReadOnlySpan<byte> span = data.IsSingleSegment ? data.FirstSpan : data.ToArray();
        int at = span.IndexOf(Marker);
        if (at < 0)
        {
            return NotStamped;
        }

        span = span[(at + 2)..];
        if (!Utf8Parser.TryParse(span, out long ts, out _))
        {
            return NotStamped;
        }

        return ts < Volatile.Read(ref s_measureFrom) ? WarmUp : (long)Stopwatch.GetElapsedTime(ts, now).TotalMicroseconds;
    }

    private const string Filler = "the quick brown fox jumps over the lazy dog while the chat room keeps talking about lunch plans; ";

    /// <summary>A timestamp marker, padded to <paramref name="size"/> with chat-like text (as compressible as real chat, not as a run of one byte).</summary>
    private static string Payload(int size)
    {
        string head = "B|" + Stopwatch.GetTimestamp().ToString(System.Globalization.CultureInfo.InvariantCulture) + "|";
        if (size <= head.Length)
        {
            return head;
        }

        var sb = new StringBuilder(head, size);
        while (sb.Length < size)
        {
            sb.Append(Filler, 0, Math.Min(Filler.Length, size - sb.Length));
        }

        return sb.ToString();
    }

    private static bool s_deflate;

    private static async Task<List<WebSocketConnection>> OpenAsync(Uri url, int count, Func<int, WebSocketHandler> handler, int concurrency = 64)
    {
        var result = new WebSocketConnection[count];
        using var gate = new SemaphoreSlim(concurrency);
        await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
        {
            await gate.WaitAsync();
            try
            {
                result[i] = await WebSocketClient.ConnectAsync(url, new WebSocketClientOptions
                {
                    Handler = handler(i),
                    Compression = s_deflate,
                    ZeroByteReads = false, // a busy generator: one read per arrival, not two
                    LocalAddress = s_sources.Length > 0 ? s_sources[i % s_sources.Length] : null,
                    Connection = new WebSocketConnectionOptions { KeepAliveInterval = null, MaxOutboundQueueBytes = 64L * 1024 * 1024 },
                });
            }
            finally
            {
                gate.Release();
            }
        }));
        return [.. result];
    }

    private static void Progress(bool json, string line)
    {
        if (!json)
        {
            Console.Error.Write("\r" + line.PadRight(100));
        }
    }

    private static int Print(BenchResult r, bool json)
    {
        string? warning = GeneratorLoad.Warning(r.GeneratorCpuShare, r.GeneratorCpus); // on standard error: standard output keeps the result alone
        if (json)
        {
            if (warning is not null)
            {
                Console.Error.WriteLine(warning);
            }

            Console.WriteLine(JsonSerializer.Serialize(r, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.CamelCase }));
            return 0;
        }

        Console.Error.WriteLine(); // ends the progress line
        if (warning is not null)
        {
            Console.Error.WriteLine(warning);
        }

        Console.WriteLine($"{r.Scenario} {r.Url}: {r.Clients} clients, {r.Seconds:0.0} s");
        Console.WriteLine($"  throughput  {r.Throughput:N0} {r.Unit}/s   sent {r.Sent:N0}   received {r.Received:N0}   lost {r.Lost:N0}");
        Console.WriteLine($"  latency     p50 {r.P50Us / 1000.0:0.00} ms   p90 {r.P90Us / 1000.0:0.00} ms   p99 {r.P99Us / 1000.0:0.00} ms   max {r.MaxUs / 1000.0:0.00} ms");
        if (r.ServerCpuSeconds is double cpu)
        {
            Console.WriteLine($"  server      {cpu:0.00} s CPU   {r.ServerCpuUsPerUnit:0.00} µs per {r.Unit}" + (r.ServerRssBytes is long rss ? $"   RSS {rss / 1048576.0:0.0} MiB" : ""));
        }

        Console.WriteLine($"  generator   {r.GeneratorCpuSeconds:0.00} s CPU   {r.GeneratorCpuShare * 100:0}% of its {r.GeneratorCpus} CPU{(r.GeneratorCpus == 1 ? "" : "s")}");
        if (r.RssPerConnectionKiB is double kib)
        {
            Console.WriteLine($"  memory      {kib:0.00} KiB RSS per connection");
        }

        return 0;
    }

    // ------------------------------------------------------------------------------------------ echo

    private sealed class EchoClient(LatencyHistogram histogram, int size, Func<bool> running) : WebSocketHandler
    {
        public override ValueTask OnMessageAsync(WebSocketConnection connection, WebSocketMessage message)
        {
            long latency = LatencyUs(message.Data, Stopwatch.GetTimestamp());
            if (latency >= 0)
            {
                histogram.Record(latency);
            }

            if (running())
            {
                connection.SendText(Payload(size)); // closed loop: the next message when the echo arrives
            }

            return ValueTask.CompletedTask;
        }
    }

    private static Command Echo()
    {
        var common = new Common();
        var size = new Option<int>("--size") { Description = "Message size in bytes", DefaultValueFactory = _ => 64 };
        var c = new Command("echo", "N closed-loop clients: send, wait for the echo, repeat");
        common.AddTo(c);
        c.Options.Add(size);
        c.Options.Add(common.WarmUpSeconds);
        c.SetAction(async parse =>
        {
            common.Prepare(parse);
            var url = new Uri(parse.GetValue(common.Url)!);
            int n = parse.GetValue(common.Clients), bytes = parse.GetValue(size);
            bool json = parse.GetValue(common.Json);
            var probe = new ServerProbe(parse.GetValue(common.ServerPid));
            var histogram = new LatencyHistogram();
            bool running = true;
            List<WebSocketConnection> connections = await OpenAsync(url, n, _ => new EchoClient(histogram, bytes, () => Volatile.Read(ref running)));
            Volatile.Write(ref s_measureFrom, long.MaxValue); // everything until the warm-up ends is not measured
            foreach (WebSocketConnection conn in connections)
            {
                conn.SendText(Payload(bytes));
            }

            await Task.Delay(TimeSpan.FromSeconds(parse.GetValue(common.WarmUpSeconds)));
            double cpu0 = probe.CpuSeconds();
            GeneratorLoad load = GeneratorLoad.Start();
            var clock = Stopwatch.StartNew();
            Volatile.Write(ref s_measureFrom, Stopwatch.GetTimestamp());
            double seconds = parse.GetValue(common.Duration);
            while (clock.Elapsed.TotalSeconds < seconds)
            {
                await Task.Delay(1000);
                Progress(json, $"echo t={clock.Elapsed.TotalSeconds:0}s round trips={histogram.Count:N0} p99={histogram.Percentile(99) / 1000.0:0.00}ms");
            }

            Volatile.Write(ref running, false);
            double elapsed = clock.Elapsed.TotalSeconds;
            long done = histogram.Count;
            double cpu = probe.CpuSeconds() - cpu0;
            (double generatorCpu, double generatorShare) = load.Stop();
            foreach (WebSocketConnection conn in connections)
            {
                conn.Abort();
            }

            return Print(new BenchResult("echo", url.ToString(), n, elapsed, done, done, done, 0, done / elapsed,
                histogram.Percentile(50), histogram.Percentile(90), histogram.Percentile(99), histogram.Max,
                probe.Available ? cpu : null, probe.Available && done > 0 ? cpu * 1e6 / done : null, "message", probe.Available ? probe.ResidentBytes() : null, null,
                generatorCpu, generatorShare, GeneratorLoad.Cpus), json);
        });
        return c;
    }

    // ------------------------------------------------------------------------------------------ broadcast

    /// <summary>
    /// Wakes the windowed sender loop when a delivery arrives while it waits for room in its window. The loop used to
    /// spin (yield and look again), which kept the generator's core at 100% and took time from its own receives.
    /// </summary>
    private sealed class DeliverySignal
    {
        private readonly SemaphoreSlim _arrived = new(0);
        private int _waiting;

        /// <summary>A delivery arrived: wake the sender if it waits.</summary>
        public void Delivered()
        {
            if (Volatile.Read(ref _waiting) == 1 && Interlocked.Exchange(ref _waiting, 0) == 1)
            {
                _arrived.Release();
            }
        }

        /// <summary>
        /// Waits until <paramref name="ready"/> (the sender's window has room), looked at once more after this starts to
        /// listen so that no delivery between the sender's last look and this call is missed; 10 ms at most.
        /// </summary>
        public async Task WaitAsync(Func<bool> ready)
        {
            Volatile.Write(ref _waiting, 1);
            if (ready() || !await _arrived.WaitAsync(10).ConfigureAwait(false))
            {
                Interlocked.Exchange(ref _waiting, 0); // a release that raced this stays counted: one early wake, harmless
            }
        }
    }

    private sealed class Receiver(LatencyHistogram histogram, string room, DeliverySignal? signal = null) : WebSocketHandler
    {
        public long Received;
        public readonly TaskCompletionSource Ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override ValueTask OnMessageAsync(WebSocketConnection connection, WebSocketMessage message)
        {
            long latency = LatencyUs(message.Data, Stopwatch.GetTimestamp());
            if (latency != NotStamped)
            {
                Interlocked.Increment(ref Received); // every delivery, warm-up included: the senders' window counts them
                signal?.Delivered();
                if (latency >= 0)
                {
                    histogram.Record(latency);
                }
            }
            else if (!Ready.Task.IsCompleted)
            {
                string text = message.GetText();
                if (text.Contains("\"type\":\"welcome\"", StringComparison.Ordinal))
                {
                    connection.SendText($"{{\"type\":\"join\",\"room\":\"{room}\",\"since\":{long.MaxValue / 2}}}");
                }
                else if (text.Contains("\"type\":\"joined\"", StringComparison.Ordinal))
                {
                    Ready.TrySetResult();
                }
            }

            return ValueTask.CompletedTask;
        }
    }

    private static Command Broadcast()
    {
        var common = new Common();
        var senders = new Option<int>("--senders") { Description = "How many of the clients also send", DefaultValueFactory = _ => 1 };
        var rate = new Option<double>("--rate") { Description = "Open loop: messages per second in total (0: use --window)", DefaultValueFactory = _ => 0 };
        var window = new Option<int>("--window") { Description = "Max throughput: messages in flight per sender", DefaultValueFactory = _ => 8 };
        var protocol = new Option<string>("--protocol") { Description = "seed ({\"name\",\"message\"} at /ws) or hub (publish to a room at /hub)", DefaultValueFactory = _ => "seed" };
        var room = new Option<string>("--room") { Description = "Room for --protocol hub", DefaultValueFactory = _ => "bench" };
        var size = new Option<int>("--size") { Description = "Padding of each message's text, in bytes (0: just the timestamp)", DefaultValueFactory = _ => 0 };
        var rooms = new Option<int>("--rooms") { Description = "With --protocol hub: spread the clients over this many rooms (client i in room i mod R; each sender publishes to its own room, with its own window)", DefaultValueFactory = _ => 1 };
        var c = new Command("broadcast", "N clients in one room; senders publish (open-loop rate or windowed); end-to-end latency from a timestamp in the payload");
        common.AddTo(c);
        c.Options.Add(senders);
        c.Options.Add(rate);
        c.Options.Add(window);
        c.Options.Add(protocol);
        c.Options.Add(room);
        c.Options.Add(size);
        c.Options.Add(rooms);
        c.Options.Add(common.WarmUpSeconds);
        c.SetAction(async parse =>
        {
            common.Prepare(parse);
            var url = new Uri(parse.GetValue(common.Url)!);
            int n = parse.GetValue(common.Clients), s = Math.Max(1, parse.GetValue(senders));
            bool json = parse.GetValue(common.Json), hub = parse.GetValue(protocol) == "hub";
            int roomCount = hub ? Math.Clamp(parse.GetValue(rooms), 1, n) : 1;
            if (n % roomCount != 0)
            {
                throw new ArgumentException("--clients must be a multiple of --rooms (every room gets as many members)");
            }

            string roomName = parse.GetValue(room)!;
            string RoomOf(int client) => roomCount == 1 ? roomName : FormattableString.Invariant($"{roomName}-{client % roomCount}");
            var probe = new ServerProbe(parse.GetValue(common.ServerPid));
            var histogram = new LatencyHistogram();
            var receivers = new Receiver[n];
            var sentBy = new long[s];
            var signal = new DeliverySignal();
            List<WebSocketConnection> connections = await OpenAsync(url, n, i => receivers[i] = new Receiver(histogram, RoomOf(i), i < s ? signal : null));
            if (hub)
            {
                await Task.WhenAll(receivers.Select(r => r.Ready.Task)).WaitAsync(TimeSpan.FromSeconds(60));
            }

            long sent = 0;
            void SendFrom(int sender)
            {
                string payload = Payload(parse.GetValue(size));
                // Ids as the clients make them: how they sort decides how many index pages the store rewrites per commit.
                string text = hub
                    ? $"{{\"type\":\"publish\",\"room\":\"{RoomOf(sender)}\",\"text\":\"{payload}\",\"id\":\"{MessageIds.New(DateTimeOffset.UtcNow)}\"}}"
                    : $"{{\"name\":\"bench{sender}\",\"message\":\"{payload}\"}}";
                if (connections[sender].SendText(text) == SendResult.Enqueued)
                {
                    Interlocked.Increment(ref sent);
                    sentBy[sender]++;
                }
            }

            double warmUp = parse.GetValue(common.WarmUpSeconds);
            double seconds = parse.GetValue(common.Duration), perSecond = parse.GetValue(rate);
            int inFlight = parse.GetValue(window);
            Volatile.Write(ref s_measureFrom, long.MaxValue); // until the warm-up ends, deliveries are not measured
            bool measuring = false;
            double cpu0 = 0;
            GeneratorLoad load = default;
            long sentBefore = 0;
            var clock = Stopwatch.StartNew();
            var measureClock = new Stopwatch();
            var lastProgress = TimeSpan.Zero;
            long RoomSent(int sender)
            {
                long roomSent = 0;
                for (int j = sender % roomCount; j < s; j += roomCount)
                {
                    roomSent += sentBy[j];
                }

                return roomSent;
            }

            long Delivered()
            {
                long delivered = long.MaxValue;
                for (int i = 0; i < s; i++)
                {
                    delivered = Math.Min(delivered, Interlocked.Read(ref receivers[i].Received));
                }

                return delivered;
            }

            Func<bool> oneRoomReady = () => Interlocked.Read(ref sent) - Delivered() < (long)inFlight * s;
            Func<bool> roomsReady = () => Enumerable.Range(0, s).Any(i => RoomSent(i) - Interlocked.Read(ref receivers[i].Received) < inFlight);
            while (measureClock.Elapsed.TotalSeconds < seconds)
            {
                if (!measuring && clock.Elapsed.TotalSeconds >= warmUp)
                {
                    // From here on: messages stamped now or later are measured (this loop is the only sender).
                    measuring = true;
                    cpu0 = probe.CpuSeconds();
                    load = GeneratorLoad.Start();
                    sentBefore = Interlocked.Read(ref sent);
                    Volatile.Write(ref s_measureFrom, Stopwatch.GetTimestamp());
                    measureClock.Start();
                }

                if (perSecond > 0)
                {
                    long due = (long)(clock.Elapsed.TotalSeconds * perSecond);
                    while (Interlocked.Read(ref sent) < due)
                    {
                        SendFrom((int)(Interlocked.Read(ref sent) % s));
                    }

                    await Task.Delay(1);
                }
                else if (roomCount > 1)
                {
                    // Windowed per sender: what it sent, against what its room delivered back to it. With several
                    // senders in one room a sender also counts the others' messages: the window is then per room.
                    bool any = false;
                    for (int i = 0; i < s; i++)
                    {
                        long roomSent = RoomSent(i);
                        while (roomSent - Interlocked.Read(ref receivers[i].Received) < inFlight)
                        {
                            SendFrom(i);
                            roomSent++;
                            any = true;
                        }
                    }

                    if (any)
                    {
                        await Task.Yield();
                    }
                    else
                    {
                        await signal.WaitAsync(roomsReady);
                    }
                }
                else
                {
                    // Windowed: at most `window` messages per sender in flight (sent, not yet delivered back to the senders).
                    bool any = false;
                    long delivered = Delivered();
                    while (Interlocked.Read(ref sent) - delivered < (long)inFlight * s)
                    {
                        SendFrom((int)(Interlocked.Read(ref sent) % s));
                        any = true;
                    }

                    if (any)
                    {
                        await Task.Yield();
                    }
                    else
                    {
                        await signal.WaitAsync(oneRoomReady);
                    }
                }

                if (clock.Elapsed - lastProgress >= TimeSpan.FromSeconds(1))
                {
                    lastProgress = clock.Elapsed;
                    Progress(json, $"broadcast t={clock.Elapsed.TotalSeconds:0}s sent={Interlocked.Read(ref sent):N0} deliveries={histogram.Count:N0} p99={histogram.Percentile(99) / 1000.0:0.00}ms");
                }
            }

            double sendSeconds = measureClock.Elapsed.TotalSeconds;
            long measuredSent = Interlocked.Read(ref sent) - sentBefore;
            long expected = measuredSent * (n / roomCount); // each message reaches the members of its room

            // Drain: wait until everything arrived, or nothing arrives for 5 s.
            long last = -1;
            var idle = Stopwatch.StartNew();
            while (histogram.Count < expected && idle.Elapsed < TimeSpan.FromSeconds(5))
            {
                if (histogram.Count != last)
                {
                    last = histogram.Count;
                    idle.Restart();
                }

                await Task.Delay(50);
            }

            double elapsed = measureClock.Elapsed.TotalSeconds;
            double cpu = probe.CpuSeconds() - cpu0;
            (double generatorCpu, double generatorShare) = load.Stop();
            long received = histogram.Count;
            foreach (WebSocketConnection conn in connections)
            {
                conn.Abort();
            }

            return Print(new BenchResult("broadcast", url.ToString(), n, sendSeconds, measuredSent, received, expected, expected - received,
                received / elapsed, histogram.Percentile(50), histogram.Percentile(90), histogram.Percentile(99), histogram.Max,
                probe.Available ? cpu : null, probe.Available && received > 0 ? cpu * 1e6 / received : null, "delivery", probe.Available ? probe.ResidentBytes() : null, null,
                generatorCpu, generatorShare, GeneratorLoad.Cpus), json);
        });
        return c;
    }

    // ------------------------------------------------------------------------------------------ connections

    private sealed class Idle : WebSocketHandler;

    private static Command Connections()
    {
        var common = new Common();
        var concurrency = new Option<int>("--concurrency") { Description = "Handshakes in flight", DefaultValueFactory = _ => 64 };
        var warmup = new Option<int>("--warmup") { Description = "Connections opened and closed before measuring (the server's one-time costs: code, pools)", DefaultValueFactory = _ => 500 };
        var c = new Command("connections", "Open K idle connections: handshake rate and server RSS per connection");
        common.AddTo(c);
        c.Options.Add(concurrency);
        c.Options.Add(warmup);
        c.SetAction(async parse =>
        {
            common.Prepare(parse);
            var url = new Uri(parse.GetValue(common.Url)!);
            int n = parse.GetValue(common.Clients);
            bool json = parse.GetValue(common.Json);
            var probe = new ServerProbe(parse.GetValue(common.ServerPid));
            if (parse.GetValue(warmup) is > 0 and int w)
            {
                // One-time costs (compiled code, pools, threads) are not per connection: pay them before the baseline.
                List<WebSocketConnection> warm = await OpenAsync(url, w, _ => new Idle(), parse.GetValue(concurrency));
                await Task.WhenAll(warm.Select(x => x.CloseAsync()));
                await Task.Delay(TimeSpan.FromSeconds(1));
            }

            long rss0 = probe.ResidentBytes();
            double cpu0 = probe.CpuSeconds();
            GeneratorLoad load = GeneratorLoad.Start();
            var clock = Stopwatch.StartNew();
            List<WebSocketConnection> connections = await OpenAsync(url, n, _ => new Idle(), parse.GetValue(concurrency));
            double elapsed = clock.Elapsed.TotalSeconds;
            double cpu = probe.CpuSeconds() - cpu0;
            (double generatorCpu, double generatorShare) = load.Stop();
            await Task.Delay(TimeSpan.FromSeconds(Math.Min(5, parse.GetValue(common.Duration)))); // let the server settle before sampling
            long rss = probe.ResidentBytes();
            foreach (WebSocketConnection conn in connections)
            {
                conn.Abort();
            }

            return Print(new BenchResult("connections", url.ToString(), n, elapsed, n, n, n, 0, n / elapsed, 0, 0, 0, 0,
                probe.Available ? cpu : null, probe.Available ? cpu * 1e6 / n : null, "handshake",
                probe.Available ? rss : null, probe.Available ? (rss - rss0) / 1024.0 / n : null,
                generatorCpu, generatorShare, GeneratorLoad.Cpus), json);
        });
        return c;
    }
}
