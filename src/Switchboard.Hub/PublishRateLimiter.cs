namespace Switchboard.Hub;

/// <summary>
/// One connection's publish allowance: a token bucket refilled at <see cref="HubOptions.PublishRateLimit"/> messages a
/// second, holding at most <see cref="HubOptions.PublishBurst"/>.
/// </summary>
public sealed class PublishRateLimiter(HubOptions options)
{
    private readonly TokenBucket _bucket = new(options.PublishRateLimit, options.PublishBurst, options.Time);

    /// <summary>A limiter for one connection, or null when publishing is not limited.</summary>
    public static PublishRateLimiter? For(HubOptions options) => options.PublishRateLimit > 0 ? new PublishRateLimiter(options) : null;

    /// <summary>
    /// Takes one publish from the allowance; false (and how long until the next one is allowed) when it is used up.
    /// </summary>
    public bool TryTake(out TimeSpan retryAfter) => _bucket.TryTake(out retryAfter);
}
