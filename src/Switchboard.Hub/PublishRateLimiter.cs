namespace Switchboard.Hub;

/// <summary>
/// One connection's publish allowance: a token bucket refilled at <see cref="HubOptions.PublishRateLimit"/> messages a
/// second, holding at most <see cref="HubOptions.PublishBurst"/>.
/// </summary>
public sealed class PublishRateLimiter(HubOptions options)
{
    /// <summary>A limiter for one connection, or null when publishing is not limited.</summary>
    public static PublishRateLimiter? For(HubOptions options) => options.PublishRateLimit > 0 ? new PublishRateLimiter(options) : null;

    private readonly Lock _lock = new();
    private double _tokens = options.PublishBurst;
    private long _refilledAt = options.Time.GetTimestamp();

    /// <summary>
    /// Takes one publish from the allowance; false (and how long until the next one is allowed) when it is used up.
    /// </summary>
    public bool TryTake(out TimeSpan retryAfter)
    {
        retryAfter = TimeSpan.Zero;
        lock (_lock)
        {
            long now = options.Time.GetTimestamp();
            _tokens = Math.Min(options.PublishBurst, _tokens + (options.Time.GetElapsedTime(_refilledAt, now).TotalSeconds * options.PublishRateLimit));
            _refilledAt = now;
            if (_tokens >= 1)
            {
                _tokens -= 1;
                return true;
            }

            retryAfter = TimeSpan.FromSeconds((1 - _tokens) / options.PublishRateLimit);
            return false;
        }
    }
}
