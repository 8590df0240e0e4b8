using Switchboard.Server;

namespace Switchboard.Sample;

/// <summary>
/// An ordinary ASP.NET Core app (a shop) that hosts the hub: browsers and apps connect to <c>/hub</c> for live order
/// updates; the shop's own code announces a shipment with <see cref="ISwitchboardHubContext"/>, acknowledged once stored
/// and safe to retry.
/// </summary>
public static class ShopApp
{
    /// <summary>The room order updates go to.</summary>
    public const string Room = "orders";

    public static WebApplication Build(string[] args, Action<SwitchboardServerOptions>? configure = null)
    {
        WebApplicationBuilder builder = WebApplication.CreateBuilder(args);
        // Settings come from the "Switchboard" configuration section (appsettings.json, environment), then from code.
        builder.Services.AddSwitchboard(o =>
        {
            o.Store = "memory";
            configure?.Invoke(o);
        });

        WebApplication app = builder.Build();
        app.MapSwitchboardHub("/hub");
        app.MapPost("/orders/{id}/shipped", async (string id, ISwitchboardHubContext hub) =>
        {
            // The order id makes the announcement idempotent: a retried request does not announce twice.
            HubPublishResult r = await hub.PublishAsync(Room, $"Order {id} has shipped", id: "shipped-" + id, name: "Shop");
            return Results.Ok(new { r.Offset, r.Duplicate });
        });
        app.MapGet("/orders/updates", async (ISwitchboardHubContext hub, long? after) =>
            (await hub.ReadAsync(Room, after ?? 0)).Select(m => new { m.Offset, m.Text }));
        return app;
    }
}
