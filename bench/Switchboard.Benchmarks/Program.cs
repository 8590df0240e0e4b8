using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/Switchboard.Benchmarks -- --filter '*' --job short
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, Switchboard.Benchmarks.BenchConfig.Create());
