using Switchboard.Protocol.Extensions;

namespace Switchboard.Protocol.UnitTests;

public class PerMessageDeflateNegotiationUnitTests
{
    private static readonly DeflateServerPolicy Default = new();

    [Theory]
    // What browsers, Node ws and Python websockets offer by default, and the RFC 7692 §7.1 examples.
    [InlineData("permessage-deflate; client_max_window_bits", "permessage-deflate")]
    [InlineData("permessage-deflate", "permessage-deflate")]
    [InlineData("permessage-deflate; server_no_context_takeover; client_no_context_takeover", "permessage-deflate; server_no_context_takeover; client_no_context_takeover")]
    [InlineData("permessage-deflate; server_max_window_bits=10", "permessage-deflate; server_max_window_bits=10")]
    [InlineData("permessage-deflate; client_max_window_bits=12", "permessage-deflate; client_max_window_bits=12")]
    [InlineData("permessage-deflate; client_max_window_bits=\"12\"", "permessage-deflate; client_max_window_bits=12")]
    [InlineData("x-webkit-deflate-frame, permessage-deflate; client_max_window_bits", "permessage-deflate")]
    // §5: invalid or unacceptable offers are declined and the next one is considered.
    [InlineData("permessage-deflate; server_max_window_bits=8, permessage-deflate", "permessage-deflate")]
    [InlineData("permessage-deflate; unknown_param, permessage-deflate; server_no_context_takeover", "permessage-deflate; server_no_context_takeover")]
    [InlineData("permessage-deflate; server_max_window_bits=16, permessage-deflate", "permessage-deflate")]
    [InlineData("permessage-deflate; server_max_window_bits, permessage-deflate", "permessage-deflate")]
    [InlineData("permessage-deflate; server_no_context_takeover=1, permessage-deflate", "permessage-deflate")]
    [InlineData("permessage-deflate; client_max_window_bits=09, permessage-deflate", "permessage-deflate")]
    [InlineData("permessage-deflate; server_no_context_takeover; server_no_context_takeover, permessage-deflate", "permessage-deflate")]
    public void Server_answers_the_first_acceptable_offer(string offer, string response) =>
        Assert.Equal(response, PerMessageDeflateNegotiation.Negotiate(offer, Default)?.ToResponseHeader());

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("x-webkit-deflate-frame")]
    [InlineData("permessage-deflate; server_max_window_bits=8")]
    [InlineData("permessage-deflate; bogus")]
    [InlineData("permessage-deflate; client_max_window_bits=7")]
    [InlineData("permessage-deflate;; ,")]
    public void Server_declines_when_no_offer_is_acceptable(string? offer) =>
        Assert.Null(PerMessageDeflateNegotiation.Negotiate(offer, Default));

    [Fact]
    public void Server_policy_can_limit_windows_only_where_the_rfc_lets_it()
    {
        var policy = new DeflateServerPolicy { ServerNoContextTakeover = true, ClientNoContextTakeover = true, ServerMaxWindowBits = 10, ClientMaxWindowBits = 11 };
        // client_max_window_bits offered (no value): the server may limit the client's window.
        Assert.Equal("permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=11",
            PerMessageDeflateNegotiation.Negotiate("permessage-deflate; client_max_window_bits", policy)!.ToResponseHeader());
        // Not offered: the server must not send client_max_window_bits (§7.1.2.2).
        Assert.Equal("permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10",
            PerMessageDeflateNegotiation.Negotiate("permessage-deflate", policy)!.ToResponseHeader());
    }

    [Theory]
    [InlineData("permessage-deflate", true, false, false, 15, 15)]
    [InlineData("permessage-deflate; server_no_context_takeover; client_max_window_bits=10", true, true, false, 15, 10)]
    [InlineData("permessage-deflate; server_max_window_bits=12; client_no_context_takeover", true, false, true, 12, 15)]
    [InlineData("", true, false, false, 0, 0)]
    public void Client_accepts_valid_answers(string response, bool ok, bool serverNoContext, bool clientNoContext, int serverBits, int clientBits)
    {
        Assert.Equal(ok, PerMessageDeflateNegotiation.TryAcceptResponse(response, false, out DeflateParameters? p, out string? error));
        Assert.Null(error);
        if (serverBits == 0)
        {
            Assert.Null(p);
            return;
        }

        Assert.Equal(new DeflateParameters(serverNoContext, clientNoContext, serverBits, clientBits), p);
    }

    [Theory]
    [InlineData("permessage-deflate; client_max_window_bits")]       // value required in a response
    [InlineData("permessage-deflate; server_max_window_bits=7")]
    [InlineData("permessage-deflate; mystery")]
    [InlineData("x-other")]
    [InlineData("permessage-deflate, permessage-deflate")]
    [InlineData("permessage-deflate; =")]
    public void Client_fails_on_invalid_answers(string response)
    {
        Assert.False(PerMessageDeflateNegotiation.TryAcceptResponse(response, false, out _, out string? error));
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Fact]
    public void Client_offer_round_trips_through_the_server()
    {
        string offer = PerMessageDeflateNegotiation.BuildOffer(clientNoContextTakeover: true);
        DeflateParameters server = PerMessageDeflateNegotiation.Negotiate(offer, Default)!;
        Assert.True(PerMessageDeflateNegotiation.TryAcceptResponse(server.ToResponseHeader(), true, out DeflateParameters? client, out _));
        Assert.Equal(server, client);
    }
}
