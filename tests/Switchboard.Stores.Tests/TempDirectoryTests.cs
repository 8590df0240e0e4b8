namespace Switchboard.Stores.Tests;

/// <summary>Test classes whose databases live in a directory of their own, deleted when the class's tests are done.</summary>
public abstract class TempDirectoryTests(string prefix) : IDisposable
{
    /// <summary>The directory.</summary>
    protected string Dir { get; } = Directory.CreateTempSubdirectory(prefix).FullName;

    public void Dispose()
    {
        Directory.Delete(Dir, recursive: true);
        GC.SuppressFinalize(this);
    }
}
