using System.Collections.Concurrent;
using Microsoft.Playwright;
using Switchboard.Tests.Shared;

namespace Switchboard.Hub.Tests;

/// <summary>
/// The browser module as an npm package (clients/js): packed with npm pack, installed from the tarball into a small
/// TypeScript project that type-checks with tsc (strict) — a wrong call does not — and runs against the server in Chromium.
/// </summary>
public class NpmPackageTests
{
    private const string Main = """
        import { connect, type HubMessage, type Ack } from 'switchboard-hub-client';

        const client = connect(`ws://${(window as any).hubHost}/hub`, { name: 'TypeScript', reconnect: { maxDelay: 2000 } });
        client.on('message', (m: HubMessage) => console.log(`got ${m.text} at ${m.offset} from ${m.name}`));
        client.on('state', s => { if (s.state === 'connected') console.log('connected'); });
        const joined = await client.join('typed-room');
        const ack: Ack = await client.publish(joined.room, 'typed hello');
        console.log(`ack ${ack.offset} duplicate=${ack.duplicate ?? false}`);
        """;

    private const string Wrong = """
        import { connect } from 'switchboard-hub-client';

        const client = connect('ws://127.0.0.1:1/hub');
        client.publish(42, 'the room must be a string');
        client.on('mesage', () => {});
        const n: number = client.state;
        """;

    [Fact]
    public async Task The_npm_package_type_checks_in_a_typescript_project_and_runs_in_chromium()
    {
        string work = Path.Combine(Path.GetTempPath(), "switchboard-npm-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(work);
        try
        {
            string packed = (await Tool.RunInAsync(Repo.Path("clients", "js"), "npm", "pack", "--pack-destination", work, "--silent")).Trim();
            string tarball = Path.Combine(work, packed.Split('\n')[^1].Trim());
            Assert.True(File.Exists(tarball), tarball);

            string app = Path.Combine(work, "app");
            Directory.CreateDirectory(Path.Combine(app, "src"));
            await File.WriteAllTextAsync(Path.Combine(app, "package.json"), $$"""
                { "name": "typed-app", "private": true, "type": "module",
                  "dependencies": { "switchboard-hub-client": "file:{{tarball}}" },
                  "devDependencies": { "typescript": "7.0.2" } }
                """);
            await File.WriteAllTextAsync(Path.Combine(app, "tsconfig.json"), """
                { "compilerOptions": { "strict": true, "target": "es2022", "module": "esnext", "moduleResolution": "bundler",
                                       "lib": ["es2022", "dom"], "rootDir": "src", "outDir": "dist", "skipLibCheck": false },
                  "files": ["src/main.ts"] }
                """);
            await File.WriteAllTextAsync(Path.Combine(app, "tsconfig.wrong.json"), """
                { "extends": "./tsconfig.json", "compilerOptions": { "noEmit": true }, "files": ["src/wrong.ts"] }
                """);
            await File.WriteAllTextAsync(Path.Combine(app, "src", "main.ts"), Main);
            await File.WriteAllTextAsync(Path.Combine(app, "src", "wrong.ts"), Wrong);
            await Tool.RunInAsync(app, "npm", "install", "--no-audit", "--no-fund", "--silent");
            Assert.True(File.Exists(Path.Combine(app, "node_modules", "switchboard-hub-client", "switchboard.d.ts")), "the declarations are in the package");

            await Tool.RunInAsync(app, "npx", "tsc", "-p", "."); // type-checks and emits dist/main.js
            var (exit, output, _) = await Tool.TryRunAsync(app, "npx", "tsc", "-p", "tsconfig.wrong.json");
            Assert.NotEqual(0, exit);
            Assert.Contains("wrong.ts(4,", output, StringComparison.Ordinal); // publish(42, ...)
            Assert.Contains("wrong.ts(5,", output, StringComparison.Ordinal); // on('mesage', ...)
            Assert.Contains("wrong.ts(6,", output, StringComparison.Ordinal); // state is not a number

            HubTestServer server = await HubTestServer.StartAsync(o => o.Store = "memory");
            await using var _ = server.App;
            string page = $$"""
                <!DOCTYPE html><html><head>
                <script type="importmap">{ "imports": { "switchboard-hub-client": "/node_modules/switchboard-hub-client/switchboard.js" } }</script>
                <script>window.hubHost = '127.0.0.1:{{server.Ws.Port}}';</script>
                <script type="module" src="/dist/main.js"></script></head><body></body></html>
                """;
            using IPlaywright playwright = await Playwright.CreateAsync();
            await using IBrowser browser = await Chromium.LaunchAsync(playwright, otherOrigins: true);
            IPage p = await browser.NewPageAsync();
            var console = new ConcurrentQueue<string>();
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            p.Console += (_, m) =>
            {
                console.Enqueue(m.Text);
                if (console.Any(l => l.StartsWith("ack ", StringComparison.Ordinal)) && console.Any(l => l.StartsWith("got ", StringComparison.Ordinal)))
                {
                    done.TrySetResult();
                }
            };
            p.PageError += (_, e) => { console.Enqueue("page error: " + e); done.TrySetResult(); };
            await p.RouteAsync("http://typed-app.test/**", async r =>
            {
                string path = new Uri(r.Request.Url).AbsolutePath;
                if (path == "/")
                {
                    await r.FulfillAsync(new() { Body = page, ContentType = "text/html" });
                    return;
                }

                string file = Path.Combine(app, path.TrimStart('/'));
                await r.FulfillAsync(File.Exists(file) ? new() { Path = file, ContentType = "text/javascript" } : new() { Status = 404 });
            });
            await p.GotoAsync("http://typed-app.test/");
            await done.Task.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Contains("ack 1 duplicate=false", console);
            Assert.Contains("got typed hello at 1 from TypeScript", console);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
