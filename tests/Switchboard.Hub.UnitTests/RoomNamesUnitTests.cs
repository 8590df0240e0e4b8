namespace Switchboard.Hub.UnitTests;

/// <summary>Room names: 1–64 of letters, digits, '.', '_' and '-', starting with a letter or digit; nothing else, anywhere.</summary>
public class RoomNamesUnitTests
{
    [Theory]
    [InlineData("a")]
    [InlineData("0")]
    [InlineData("lobby")]
    [InlineData("Team.42_chat-room")]
    [InlineData("z...")]
    [InlineData("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")] // 64
    public void Valid(string name) => Assert.True(HubOptions.IsValidRoomName(name));

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("lobby\n")] // a line break after a valid name
    [InlineData("lobby\r\n")]
    [InlineData("\nlobby")]
    [InlineData("-lobby")]
    [InlineData(".lobby")]
    [InlineData("_lobby")]
    [InlineData("has space")]
    [InlineData("caf\u00e9")] // letters outside ASCII
    [InlineData("\uff41")] // a full-width 'a'
    [InlineData("lob/by")]
    [InlineData("lobby\0")]
    [InlineData("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-x")] // 65
    public void Invalid(string? name) => Assert.False(HubOptions.IsValidRoomName(name));
}
