using System.Reflection;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using System.Text.RegularExpressions;
using Switchboard.Hub.Messages;

namespace Switchboard.Hub.UnitTests;

/// <summary>
/// The browser module's declarations (clients/js/switchboard.d.ts) against the protocol's one definition
/// (Switchboard.Hub.Messages): every message the server sends has exactly one interface, with the same fields, the
/// same types, and the same fields optional.
/// </summary>
public sealed partial class TypeScriptDeclarationsUnitTests
{
    private static readonly Dictionary<string, Dictionary<string, (string Type, bool Optional)>> Interfaces = ParseInterfaces(
        File.ReadAllText(Repo.Path("clients", "js", "switchboard.d.ts")));

    public static TheoryData<string> ServerMessageTypes => [.. HubMessageTypes.ServerMessages.Keys];

    [Theory]
    [MemberData(nameof(ServerMessageTypes))]
    public void Every_server_message_is_declared_as_the_definition_says(string type)
    {
        string[] declaring = [.. Interfaces.Where(i => i.Value.TryGetValue("type", out var t) && Literals(t.Type).Contains(type)).Select(i => i.Key)];
        string name = Assert.Single(declaring);
        Assert.Equal([], Differences(name, HubMessageTypes.ServerMessages[type]));
    }

    [Fact]
    public void The_check_finds_a_field_that_is_missing_mistyped_or_wrongly_optional()
    {
        var declared = Interfaces["Ack"];
        try
        {
            Interfaces["Ack"] = new(declared) { ["offset"] = ("string", false) };
            Assert.Contains(Differences("Ack", typeof(AckMessage)), d => d.Contains("offset", StringComparison.Ordinal));
            Interfaces["Ack"] = new(declared) { ["duplicate"] = ("boolean", false) };
            Assert.Contains(Differences("Ack", typeof(AckMessage)), d => d.Contains("duplicate", StringComparison.Ordinal));
            var without = new Dictionary<string, (string, bool)>(declared);
            without.Remove("room");
            Interfaces["Ack"] = without;
            Assert.Contains(Differences("Ack", typeof(AckMessage)), d => d.Contains("room", StringComparison.Ordinal));
            Interfaces["Ack"] = new(declared) { ["extra"] = ("string", true) };
            Assert.Contains(Differences("Ack", typeof(AckMessage)), d => d.Contains("extra", StringComparison.Ordinal));
        }
        finally
        {
            Interfaces["Ack"] = declared;
        }
    }

    /// <summary>What differs between the interface and the record, one line each (nested records are compared too).</summary>
    private static List<string> Differences(string interfaceName, Type record)
    {
        var differences = new List<string>();
        if (!Interfaces.TryGetValue(interfaceName, out var fields))
        {
            return [$"no interface {interfaceName} for {record.Name}"];
        }

        JsonTypeInfo info = HubJson.Options.GetTypeInfo(record);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (JsonPropertyInfo property in info.Properties)
        {
            seen.Add(property.Name);
            if (!fields.TryGetValue(property.Name, out var field))
            {
                differences.Add($"{interfaceName}.{property.Name} is missing");
                continue;
            }

            if (property.Name == "type")
            {
                continue; // a literal union, checked by the caller
            }

            bool optional = IsOptional(record, property);
            if (field.Optional != optional)
            {
                differences.Add($"{interfaceName}.{property.Name} is {(field.Optional ? "optional" : "required")}, the server {(optional ? "may leave it out" : "always sends it")}");
            }

            Type clr = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            if (clr.IsGenericType && clr.GetGenericTypeDefinition() == typeof(IReadOnlyList<>))
            {
                Match array = Regex.Match(field.Type, @"^(\w+)\[\]$");
                if (!array.Success)
                {
                    differences.Add($"{interfaceName}.{property.Name} is {field.Type}, not an array");
                    continue;
                }

                differences.AddRange(Differences(array.Groups[1].Value, clr.GetGenericArguments()[0]));
            }
            else if (TypeScriptType(clr) is not string expected || field.Type != expected)
            {
                differences.Add($"{interfaceName}.{property.Name} is {field.Type}, the server sends {TypeScriptType(clr) ?? clr.Name}");
            }
        }

        differences.AddRange(fields.Keys.Where(f => !seen.Contains(f)).Select(f => $"{interfaceName}.{f} is not in {record.Name}"));
        return differences;
    }

    private static string? TypeScriptType(Type clr) =>
        clr == typeof(string) || clr == typeof(DateTimeOffset) ? "string"
        : clr == typeof(long) || clr == typeof(int) ? "number"
        : clr == typeof(bool) ? "boolean"
        : null;

    /// <summary>Left out when null (nullable), or when false (ignored when default).</summary>
    private static bool IsOptional(Type record, JsonPropertyInfo property)
    {
        if (Nullable.GetUnderlyingType(property.PropertyType) is not null || property.IsGetNullable && !property.PropertyType.IsValueType)
        {
            return true;
        }

        PropertyInfo? clr = record.GetProperties().FirstOrDefault(p => JsonNamingPolicy(p.Name) == property.Name);
        return clr?.GetCustomAttribute<JsonIgnoreAttribute>()?.Condition == JsonIgnoreCondition.WhenWritingDefault;
    }

    private static string JsonNamingPolicy(string name) => System.Text.Json.JsonNamingPolicy.CamelCase.ConvertName(name);

    private static string[] Literals(string union) => [.. LiteralPattern().Matches(union).Select(m => m.Groups[1].Value)];

    /// <summary><c>export interface Name { field?: type; ... }</c> → fields with their type text and whether optional.</summary>
    private static Dictionary<string, Dictionary<string, (string Type, bool Optional)>> ParseInterfaces(string declarations)
    {
        var result = new Dictionary<string, Dictionary<string, (string, bool)>>(StringComparer.Ordinal);
        foreach (Match m in InterfacePattern().Matches(declarations))
        {
            // Inherited fields first (interfaces are declared before what extends them).
            var fields = result.TryGetValue(m.Groups["base"].Value, out var inherited)
                ? new Dictionary<string, (string, bool)>(inherited)
                : new Dictionary<string, (string, bool)>(StringComparer.Ordinal); // no base, or one not declared here (Error)
            foreach (Match f in FieldPattern().Matches(m.Groups[2].Value))
            {
                fields[f.Groups[1].Value] = (f.Groups[3].Value.Trim(), f.Groups[2].Success && f.Groups[2].Value == "?");
            }

            result[m.Groups[1].Value] = fields;
        }

        return result;
    }

    [GeneratedRegex(@"export interface (\w+)(?: extends (?<base>\w+))? \{(.*?)\n\}", RegexOptions.Singleline)]
    private static partial Regex InterfacePattern();

    [GeneratedRegex(@"^\s*(\w+)(\?)?: ([^;]+);", RegexOptions.Multiline)]
    private static partial Regex FieldPattern();

    [GeneratedRegex(@"'([a-z_]+)'")]
    private static partial Regex LiteralPattern();
}
