using System.CommandLine;
using Switchboard.Client;

namespace Switchboard.Cli;

/// <summary>
/// `switchboard chat URL --name N --room R`: an interactive terminal chat. Full duplex: messages appear while you
/// type. Commands: /join ROOM, /leave [ROOM], /who, /history [N], /rooms, /quit. It reconnects and resumes by itself.
/// </summary>
internal static class ChatCommand
{
    private static readonly object Out = new();

    private static void Print(string line)
    {
        lock (Out)
        {
            Console.Out.WriteLine(line);
            Console.Out.Flush();
        }
    }

    public static Command Create()
    {
        var url = new Argument<string>("url") { Description = "The server (ws://host:8000) or its /hub endpoint" };
        var name = new Option<string>("--name") { Description = "Your display name", DefaultValueFactory = _ => Environment.UserName };
        var room = new Option<string>("--room") { Description = "The room to start in", DefaultValueFactory = _ => "general" };
        var token = new Option<string>("--token") { Description = "JWT when the server requires one (default: $SWITCHBOARD_TOKEN)" };
        var command = new Command("chat", "Chat in a room from the terminal (/join, /leave, /who, /history, /rooms, /quit)") { url, name, room, token };
        command.SetAction(async (parse, ct) =>
        {
            if (!HubCommands.TryUrl(parse.GetValue(url), out Uri target))
            {
                return 2;
            }

            SwitchboardClient client;
            try
            {
                client = await SwitchboardClient.ConnectAsync(target, new SwitchboardClientOptions
                {
                    Name = parse.GetValue(name)!,
                    Token = parse.GetValue(token) ?? Environment.GetEnvironmentVariable("SWITCHBOARD_TOKEN"),
                }, ct);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                Console.Error.WriteLine(ex is NotAHubException ? "switchboard: " + ex.Message : $"switchboard: cannot connect to {Redaction.Redact(target)}: {ex.Message}");
                return 1;
            }

            await using (client)
            {
                var members = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
                string? current = parse.GetValue(room)!;
                bool quitting = false;
                var sending = new List<Task>(); // publishes not yet acked: waited for before exiting, so none is reported lost
                client.StateChanged += s =>
                {
                    if (s == ConnectionState.Closed && quitting)
                    {
                        return;
                    }

                    Console.Error.WriteLine(s == ConnectionState.Reconnecting && client.NextRetry is { } at
                        ? $"-- connection lost, reconnecting in {Math.Max(0, (at - DateTimeOffset.UtcNow).TotalSeconds):0.0}s"
                        : $"-- {s.ToString().ToLowerInvariant()}");
                };

                async Task<int> QuitAsync()
                {
                    Task[] pending;
                    lock (sending)
                    {
                        pending = [.. sending];
                    }

                    await Task.WhenAny(Task.WhenAll(pending), Task.Delay(TimeSpan.FromSeconds(10), CancellationToken.None));
                    quitting = true;
                    return 0;
                }

                async Task<bool> JoinAsync(string r)
                {
                    try
                    {
                        JoinedRoom joined = await client.JoinAsync(r, cancellationToken: ct);
                        lock (members)
                        {
                            members[r] = joined.Members.ToDictionary(m => m.User, m => m.Name);
                        }

                        Print($"-- joined #{r} ({joined.Members.Count} here)");
                        return true;
                    }
                    catch (HubErrorException e)
                    {
                        Print($"-- cannot join #{r}: {e.Message}");
                        return false;
                    }
                }

                if (!await JoinAsync(current))
                {
                    return 1;
                }

                _ = Task.Run(async () =>
                {
                    await foreach (HubMessage m in client.Messages(ct))
                    {
                        string where = m.Room == current ? "" : $"#{m.Room} ";
                        Print($"{where}[{m.Time.ToLocalTime():HH:mm:ss}] {m.Name}: {m.Text}");
                    }
                }, ct);
                _ = Task.Run(async () =>
                {
                    await foreach (HubEvent e in client.Events(ct))
                    {
                        lock (members)
                        {
                            if (e is MemberJoined j && members.TryGetValue(j.Room, out var a))
                            {
                                a[j.User] = j.Name;
                            }
                            else if (e is MemberLeft l && members.TryGetValue(l.Room, out var b))
                            {
                                b.Remove(l.User);
                            }
                        }

                        Print(e switch
                        {
                            MemberJoined j => $"-- {j.Name} joined #{j.Room}",
                            MemberLeft l => $"-- {l.Name} left #{l.Room}",
                            MessagesLost g => $"-- #{g.Room}: {g.To - g.From + 1} older messages are no longer available",
                            HistoryReset r => $"-- #{r.Room}: the room's history was reset",
                            _ => "-- " + e,
                        });
                    }
                }, ct);

                while (true)
                {
                    if (!Console.IsInputRedirected)
                    {
                        Console.Error.Write(current is null ? "(no room) > " : $"#{current} > "); // where typed text goes
                    }

                    string? line = await Task.Factory.StartNew(Console.In.ReadLine, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
                    if (line is null || line.Trim() == "/quit")
                    {
                        return await QuitAsync();
                    }

                    if (line.Length == 0)
                    {
                        continue;
                    }

                    string[] words = line.Trim().Split(' ', 2, StringSplitOptions.RemoveEmptyEntries);
                    switch (words[0])
                    {
                        case "/join" when words.Length == 2:
                            if (await JoinAsync(words[1].Trim()))
                            {
                                current = words[1].Trim();
                            }

                            break;
                        case "/leave":
                            string? leaving = words.Length == 2 ? words[1].Trim() : current;
                            if (leaving is null)
                            {
                                Print("-- not in a room");
                                break;
                            }

                            await client.LeaveAsync(leaving, ct);
                            lock (members)
                            {
                                members.Remove(leaving);
                                if (leaving == current)
                                {
                                    current = members.Keys.FirstOrDefault(); // typed text goes to a room still joined, or nowhere
                                }
                            }

                            Print($"-- left #{leaving}" + (current is null ? "; /join ROOM to talk again" : $"; now talking in #{current}"));
                            break;
                        case "/who" when current is null:
                        case "/history" when current is null:
                            Print("-- not in a room: /join ROOM first");
                            break;
                        case "/who":
                            lock (members)
                            {
                                Print($"-- in #{current}: " + string.Join(", ", (members.TryGetValue(current, out var who) ? who.Values.ToArray() : []).Order()));
                            }

                            break;
                        case "/history":
                            int n = words.Length == 2 && int.TryParse(words[1], out int k) ? k : 20;
                            var (page, _) = await client.HistoryAsync(current, null, n, ct);
                            foreach (HubMessage m in page)
                            {
                                Print($"[{m.Time.ToLocalTime():HH:mm:ss}] {m.Name}: {m.Text}");
                            }

                            break;
                        case "/rooms":
                            lock (members)
                            {
                                Print("-- rooms: " + string.Join(", ", members.Keys.Select(r => r == current ? $"#{r} (current)" : "#" + r)));
                            }

                            break;
                        default:
                            if (words[0].StartsWith('/'))
                            {
                                Print("-- commands: /join ROOM, /leave [ROOM], /who, /history [N], /rooms, /quit");
                                break;
                            }

                            if (current is null)
                            {
                                Print("-- not in a room, not sent: /join ROOM first");
                                break;
                            }

                            string to = current;
                            Task publish = client.PublishAsync(to, line, null, CancellationToken.None).ContinueWith(
                                t => Print($"-- not sent to #{to}: {t.Exception?.InnerException?.Message}"),
                                CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
                            lock (sending)
                            {
                                sending.RemoveAll(p => p.IsCompleted);
                                sending.Add(publish.ContinueWith(_ => { }, TaskScheduler.Default));
                            }

                            break;
                    }
                }
            }
        });
        return command;
    }
}
