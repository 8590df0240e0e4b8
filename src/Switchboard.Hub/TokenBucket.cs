namespace Switchboard.Hub;

/// <summary>
/// A token bucket on an injected clock: refilled at <c>ratePerSecond</c>, holding at most <c>burst</c> tokens, full at
/// first. Thread-safe. The allowance behind every rate bound in the hub (publishes, new rooms).
/// </summary>
public sealed class TokenBucket(double ratePerSecond, int burst, TimeProvider time)
{
    private readonly Lock _lock = new();
    private double _tokens = burst;
    private long _refilledAt = time.GetTimestamp();

    /// <summary>Takes one token; false (and how long until one is available) when the bucket is empty.</summary>
    public bool TryTake(out TimeSpan retryAfter)
    {
        retryAfter = TimeSpan.Zero;
        lock (_lock)
        {
            long now = time.GetTimestamp();
            _tokens = Math.Min(burst, _tokens + (time.GetElapsedTime(_refilledAt, now).TotalSeconds * ratePerSecond));
            _refilledAt = now;
            if (_tokens >= 1)
            {
                _tokens -= 1;
                return true;
            }

            retryAfter = TimeSpan.FromSeconds((1 - _tokens) / ratePerSecond);
            return false;
        }
    }
}
