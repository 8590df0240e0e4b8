using System.Diagnostics;

namespace Switchboard.Hub;

/// <summary>
/// The hub's traces on the ActivitySource "Switchboard.Hub": <c>publish</c> (a command received until its ack or
/// error), <c>store.append</c> (one batch commit, linked to every publish it carries), <c>fanout</c> (one committed
/// message to the members here, a child of its publish when it was published here), <c>catchup</c> (a member replaying
/// history before it goes live). A slow publish can be followed in any OpenTelemetry backend: parse, wait in the room's
/// queue, commit, fan-out. With no listener, starting an activity costs one check.
/// </summary>
public static class HubTracing
{
    /// <summary>The source's name.</summary>
    public const string SourceName = "Switchboard.Hub";

    internal static ActivitySource Source { get; } = new(SourceName);

    internal static Activity? StartPublish(string room, string userId)
    {
        Activity? a = Source.StartActivity("publish", ActivityKind.Server);
        a?.SetTag("switchboard.room", room);
        a?.SetTag("switchboard.user", userId);
        return a;
    }

    internal static Activity? StartAppend(string room, Room.Publish[] batch)
    {
        if (!Source.HasListeners())
        {
            return null; // the links are built only for a listener: nothing is allocated per batch otherwise
        }

        Activity? a = Source.StartActivity("store.append", ActivityKind.Internal, parentContext: default,
            links: [.. batch.Where(p => p.Trace != default).Select(p => new ActivityLink(p.Trace))]);
        a?.SetTag("switchboard.room", room);
        a?.SetTag("switchboard.batch_size", batch.Length);
        return a;
    }

    internal static Activity? StartFanout(string room, long offset, ActivityContext publish, int members)
    {
        Activity? a = Source.StartActivity("fanout", ActivityKind.Internal, publish);
        a?.SetTag("switchboard.room", room);
        a?.SetTag("switchboard.offset", offset);
        a?.SetTag("switchboard.members", members);
        return a;
    }

    internal static Activity? StartCatchUp(string room, long after, string from)
    {
        Activity? a = Source.StartActivity("catchup", ActivityKind.Internal);
        a?.SetTag("switchboard.room", room);
        a?.SetTag("switchboard.after", after);
        a?.SetTag("switchboard.from", from); // "cache" (recent messages, in memory) or "store"
        return a;
    }
}
