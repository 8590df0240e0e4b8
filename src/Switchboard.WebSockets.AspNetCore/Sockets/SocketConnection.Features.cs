using System.Collections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace Switchboard.WebSockets.AspNetCore.Sockets;

/// <summary>
/// The connection is its own feature collection: the transport's features are the connection itself (no object per
/// feature, no dictionary), and what others set (Kestrel sets four of its own on every connection) goes in a short
/// array searched in order — a handful of entries, where a dictionary would cost several hundred bytes.
/// </summary>
internal sealed partial class SocketConnection : IFeatureCollection, IConnectionIdFeature, IConnectionTransportFeature,
    IConnectionItemsFeature, IMemoryPoolFeature, IConnectionLifetimeFeature, IConnectionEndPointFeature, IConnectionSocketFeature
{
    /// <summary>Stands for null on one of the transport's own features that someone removed.</summary>
    private static readonly object Removed = new();

    private KeyValuePair<Type, object>[]? _extra;
    private int _extraCount;
    private int _revision;

    bool IFeatureCollection.IsReadOnly => false;

    int IFeatureCollection.Revision => _revision;

    object? IFeatureCollection.this[Type key]
    {
        get
        {
            ArgumentNullException.ThrowIfNull(key);
            lock (_gate)
            {
                for (int i = 0; i < _extraCount; i++)
                {
                    if (_extra![i].Key == key)
                    {
                        return _extra[i].Value == Removed ? null : _extra[i].Value;
                    }
                }
            }

            return IsOwn(key) ? this : null;
        }
        set
        {
            ArgumentNullException.ThrowIfNull(key);
            lock (_gate)
            {
                _revision++;
                for (int i = 0; i < _extraCount; i++)
                {
                    if (_extra![i].Key == key)
                    {
                        if (value is null && !IsOwn(key))
                        {
                            _extraCount--;
                            Array.Copy(_extra, i + 1, _extra, i, _extraCount - i);
                            _extra[_extraCount] = default;
                        }
                        else
                        {
                            _extra[i] = new(key, value ?? Removed);
                        }

                        return;
                    }
                }

                if (value is null && !IsOwn(key))
                {
                    return;
                }

                _extra ??= new KeyValuePair<Type, object>[4];
                if (_extraCount == _extra.Length)
                {
                    Array.Resize(ref _extra, _extraCount * 2);
                }

                _extra[_extraCount++] = new(key, value ?? Removed); // an own feature removed: Removed hides it
            }
        }
    }

    private static bool IsOwn(Type key) =>
        key == typeof(IConnectionIdFeature) || key == typeof(IConnectionTransportFeature) || key == typeof(IConnectionItemsFeature) ||
        key == typeof(IMemoryPoolFeature) || key == typeof(IConnectionLifetimeFeature) || key == typeof(IConnectionEndPointFeature) ||
        key == typeof(IConnectionSocketFeature);

    TFeature? IFeatureCollection.Get<TFeature>() where TFeature : default => (TFeature?)((IFeatureCollection)this)[typeof(TFeature)];

    void IFeatureCollection.Set<TFeature>(TFeature? instance) where TFeature : default => ((IFeatureCollection)this)[typeof(TFeature)] = instance;

    IEnumerator<KeyValuePair<Type, object>> IEnumerable<KeyValuePair<Type, object>>.GetEnumerator()
    {
        KeyValuePair<Type, object>[] extra;
        lock (_gate)
        {
            extra = _extra is null ? [] : _extra[.._extraCount];
        }

        foreach (KeyValuePair<Type, object> pair in extra)
        {
            if (pair.Value != Removed)
            {
                yield return pair;
            }
        }

        foreach (Type own in (Type[])[typeof(IConnectionIdFeature), typeof(IConnectionTransportFeature), typeof(IConnectionItemsFeature),
                     typeof(IMemoryPoolFeature), typeof(IConnectionLifetimeFeature), typeof(IConnectionEndPointFeature), typeof(IConnectionSocketFeature)])
        {
            if (!Array.Exists(extra, p => p.Key == own))
            {
                yield return new(own, this);
            }
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => ((IEnumerable<KeyValuePair<Type, object>>)this).GetEnumerator();
}
