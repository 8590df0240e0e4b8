using Switchboard.Hub;
using Switchboard.WebSockets;

namespace Switchboard.Server;

/// <summary>A room's fan-out batch as the engine's <see cref="SendBatch"/>: one write per member per batch.</summary>
internal sealed class EngineDeliveryBatching : IDeliveryBatching
{
    public static readonly EngineDeliveryBatching Instance = new();

    public void Begin() => SendBatch.Begin();

    public void End() => SendBatch.End();
}
