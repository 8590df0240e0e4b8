using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Switchboard.Stores.Sqlite;

/// <summary>
/// A statement of the writer's hot path, prepared once on the writer's connection and driven through SQLite's own API.
/// Microsoft.Data.Sqlite allocates per execution (a data reader, a statement enumerator, a parameter binder per
/// parameter, a UTF-8 copy of every string, a boxed integer): at tens of thousands of appends a second that was a third
/// of the store's allocations. Here strings are bound as UTF-16 (SQLite copies them) and nothing is allocated. It runs
/// inside whatever transaction the connection is in, like any statement on it.
/// </summary>
internal sealed class RawStatement : IDisposable
{
    private readonly sqlite3 _db;
    private readonly sqlite3_stmt _stmt;

    public RawStatement(SqliteConnection connection, string sql)
    {
        _db = connection.Handle ?? throw new InvalidOperationException("The connection is not open.");
        int rc = raw.sqlite3_prepare_v2(_db, sql, out _stmt);
        SqliteException.ThrowExceptionForRC(rc, _db);
    }

    public void Bind(int index, string value) => Check(raw.sqlite3_bind_text16(_stmt, index, value.AsSpan()));

    public void Bind(int index, long value) => Check(raw.sqlite3_bind_int64(_stmt, index, value));

    /// <summary>Runs the statement (one that returns no rows) and returns how many rows it changed.</summary>
    public int Execute()
    {
        int rc = raw.sqlite3_step(_stmt);
        try
        {
            if (rc != raw.SQLITE_DONE)
            {
                SqliteException.ThrowExceptionForRC(rc, _db); // reads the error message before the reset below
                throw new InvalidOperationException($"The statement returned a row (SQLite result {rc}); it must not.");
            }

            return raw.sqlite3_changes(_db);
        }
        finally
        {
            raw.sqlite3_reset(_stmt); // ready for the next execution; the bindings stay until replaced
        }
    }

    private void Check(int rc)
    {
        if (rc != raw.SQLITE_OK)
        {
            SqliteException.ThrowExceptionForRC(rc, _db);
        }
    }

    public void Dispose() => _stmt.Dispose();
}
