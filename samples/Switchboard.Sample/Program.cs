using Switchboard.Sample;

// dotnet run --project samples/Switchboard.Sample -- --urls http://127.0.0.1:5080
ShopApp.Build(args).Run();
