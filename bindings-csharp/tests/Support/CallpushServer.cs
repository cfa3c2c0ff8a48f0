using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Json;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Threading;
using NUnit.Framework;

namespace Callpush.Tests
{
    /// <summary>
    /// The real server for the Windows flow tests: <c>callpush-dev emulate</c> (the WNS emulator,
    /// which checks every request as WNS does) and <c>callpush serve</c> sending to it through
    /// its real WNS sender, both child processes on loopback with their own directory, SQLite
    /// database, HS256 device-token secret and API key. The test plays the app backend (ring,
    /// cancel, read a call with the API key); <see cref="WnsDevice"/> plays Windows, turning what
    /// the emulator accepted for a channel into raw notifications.
    /// </summary>
    /// <remarks>
    /// The binaries are <c>$CALLPUSH_BIN</c> and <c>$CALLPUSH_DEV_BIN</c>, else
    /// <c>target/debug/callpush</c> and <c>target/debug/callpush-dev</c> of the workspace, with
    /// <c>.exe</c> on Windows (bindings-csharp/tests/run.sh and run-windows.ps1 build them).
    /// </remarks>
    public sealed class CallpushServer : IDisposable
    {
        private static readonly HttpClient Http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        private readonly Dictionary<string, string> tokens = new Dictionary<string, string>();
        private Process emulator;
        private Process server;
        private readonly object logGate = new object();
        private StreamWriter log;

        public readonly string Dir = TempDirs.New();
        public readonly string ApiKey = "cs-test-backend-key-" + Guid.NewGuid().ToString("N");
        public string Url { get; private set; }
        public string WnsUrl { get; private set; }
        private string ConfigPath { get { return Path.Combine(Dir, "callpush.toml"); } }
        private string LogPath { get { return Path.Combine(Dir, "server.log"); } }

        public static string Workspace()
        {
            var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
            for (; dir != null; dir = dir.Parent)
            {
                var manifest = Path.Combine(dir.FullName, "Cargo.toml");
                if (File.Exists(manifest) && File.ReadAllText(manifest).Contains("[workspace]")) return dir.FullName;
            }
            throw new InvalidOperationException("no cargo workspace above " + TestContext.CurrentContext.TestDirectory);
        }

        /// <summary>Windows (.NET Framework, or Mono on Windows): executables end in .exe.</summary>
        public static bool OnWindows
        {
            get { return Environment.OSVersion.Platform == PlatformID.Win32NT; }
        }

        private static string Binary(string variable, string name)
        {
            var given = Environment.GetEnvironmentVariable(variable);
            var path = string.IsNullOrEmpty(given) ? Path.Combine(Workspace(), "target", "debug", OnWindows ? name + ".exe" : name) : given;
            if (!File.Exists(path))
            {
                throw new FileNotFoundException(path + " is missing: run bindings-csharp/tests/run.sh (run-windows.ps1 on Windows), which builds it", path);
            }
            return path;
        }

        private static ProcessStartInfo Start(string file, string arguments, string dir)
        {
            var info = new ProcessStartInfo(file, arguments)
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = dir,
            };
            // Other CALLPUSH_* variables would override the configuration written here. (Windows
            // spells variable names in any case and means the same variable.)
            foreach (var key in info.EnvironmentVariables.Keys.Cast<string>().Where(k => k.StartsWith("CALLPUSH_", StringComparison.OrdinalIgnoreCase)).ToList())
            {
                info.EnvironmentVariables.Remove(key);
            }
            info.EnvironmentVariables["CALLPUSH_LOG"] = "warn";
            return info;
        }

        /// <summary>Starts both processes and waits until the server is healthy.</summary>
        public void StartServer()
        {
            var emulatorDir = Path.Combine(Dir, "emulators");
            emulator = Process.Start(Start(Binary("CALLPUSH_DEV_BIN", "callpush-dev"), "emulate --dir \"" + emulatorDir + "\"", Dir));
            var providers = ReadProviderSnippet(emulator);
            WnsUrl = providers.Item1;
            var secret = Convert.ToBase64String(Guid.NewGuid().ToByteArray().Concat(Guid.NewGuid().ToByteArray()).ToArray());
            for (var attempt = 0; ; attempt++)
            {
                var port = FreePort();
                Url = "http://127.0.0.1:" + port;
                File.WriteAllText(ConfigPath, string.Join("\n", new[]
                {
                    "listen = \"127.0.0.1:" + port + "\"",
                    // sqlite:PATH, not sqlite://PATH: the server parses the URL, and a Windows path
                    // after "//" would be taken for a host ("C:") and mangled.
                    "database_url = " + Toml("sqlite:" + Path.Combine(Dir, "callpush.db")),
                    "database_connections = 4",
                    "data_dir = " + Toml(Dir),
                    "api_keys = [" + Toml(ApiKey) + "]",
                    "",
                    "[auth]",
                    "hs256_secret = " + Toml(secret),
                    "",
                    "[ring]",
                    "default_ring_seconds = 30",
                    "max_ring_seconds = 120",
                    "concurrency = 8",
                    "claim_batch = 16",
                    "",
                    providers.Item2,
                }));
                var info = Start(Binary("CALLPUSH_BIN", "callpush"), "serve --config \"" + ConfigPath + "\"", Dir);
                lock (logGate)
                {
                    // One writer for every attempt, shared so that Log() can read the file meanwhile
                    // (Windows refuses a second open otherwise).
                    if (log == null)
                    {
                        var stream = new FileStream(LogPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
                        log = new StreamWriter(stream) { AutoFlush = true };
                    }
                }
                server = Process.Start(info);
                server.OutputDataReceived += (s, e) => AppendLog(e.Data);
                server.ErrorDataReceived += (s, e) => AppendLog(e.Data);
                server.BeginOutputReadLine();
                server.BeginErrorReadLine();
                if (Healthy()) return;
                Kill(server);
                if (attempt >= 4) throw new InvalidOperationException("callpush serve did not start:\n" + Log());
            }
        }

        /// <summary>
        /// The WNS URL and the provider configuration <c>callpush-dev emulate</c> prints: the lines
        /// after its "# Add to the configuration" marker, up to the blank line that ends the last table.
        /// </summary>
        private static Tuple<string, string> ReadProviderSnippet(Process emulator)
        {
            var lines = new List<string>();
            string wns = null;
            var inSnippet = false;
            var reader = new Thread(() =>
            {
                string line;
                while ((line = emulator.StandardOutput.ReadLine()) != null)
                {
                    if (line.StartsWith("WNS ")) wns = line.Substring(3).Trim();
                    if (line.StartsWith("# Add to the configuration")) { inSnippet = true; continue; }
                    if (!inSnippet) continue;
                    lock (lines)
                    {
                        if (line.Length == 0 && lines.Any(l => l.StartsWith("[providers.wns]")))
                        {
                            inSnippet = false;
                            Monitor.PulseAll(lines);
                            continue;
                        }
                        lines.Add(line);
                    }
                }
                lock (lines) Monitor.PulseAll(lines);
            }) { IsBackground = true };
            reader.Start();
            emulator.ErrorDataReceived += (s, e) => { };
            emulator.BeginErrorReadLine();
            lock (lines)
            {
                var deadline = DateTime.UtcNow.AddSeconds(30);
                while (inSnippet || !lines.Any(l => l.StartsWith("[providers.wns]")))
                {
                    var left = deadline - DateTime.UtcNow;
                    if (left <= TimeSpan.Zero || emulator.HasExited)
                    {
                        throw new InvalidOperationException("callpush-dev emulate printed no provider configuration: " + string.Join("\n", lines));
                    }
                    Monitor.Wait(lines, left);
                }
                return Tuple.Create(wns, string.Join("\n", lines) + "\n");
            }
        }

        private bool Healthy()
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (DateTime.UtcNow < deadline && !server.HasExited)
            {
                try
                {
                    if (Http.GetAsync(Url + "/healthz").Result.StatusCode == HttpStatusCode.OK) return true;
                }
                catch (AggregateException)
                {
                    // Not listening yet.
                }
                Thread.Sleep(25);
            }
            return false;
        }

        private void AppendLog(string line)
        {
            if (line == null) return;
            lock (logGate)
            {
                if (log != null) log.WriteLine(line);
            }
        }

        public string Log()
        {
            if (!File.Exists(LogPath)) return "";
            // Shared with the writer, which still has the file open (Windows refuses otherwise).
            using (var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
            using (var reader = new StreamReader(stream))
            {
                return reader.ReadToEnd();
            }
        }

        private static int FreePort()
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
            return port;
        }

        private static string Toml(string value)
        {
            return "\"" + value.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
        }

        /// <summary>Ends the process and waits for it, so that its files are closed (Windows keeps them locked until then).</summary>
        private static void Kill(Process process)
        {
            try
            {
                if (process != null && !process.HasExited) process.Kill();
            }
            catch (InvalidOperationException)
            {
                // Already gone.
            }
            catch (System.ComponentModel.Win32Exception)
            {
                // Windows: already exiting.
            }
            if (process != null) process.WaitForExit(10000);
        }

        public void Dispose()
        {
            var logged = Log();
            Kill(server);
            Kill(emulator);
            lock (logGate)
            {
                if (log != null) log.Dispose();
                log = null;
            }
            if (logged.Trim().Length > 0) Console.Error.WriteLine("---- callpush serve logged:\n" + logged + "----");
            try
            {
                Directory.Delete(Dir, true);
            }
            catch (IOException)
            {
                // A child still closing a file: the OS cleans the temp directory.
            }
            catch (UnauthorizedAccessException)
            {
                // Windows' answer to a file still open.
            }
        }

        /// <summary>A device bearer token for <paramref name="user"/>, minted by <c>callpush token</c>.</summary>
        public string Token(string user)
        {
            lock (tokens)
            {
                string known;
                if (tokens.TryGetValue(user, out known)) return known;
                var minted = Process.Start(Start(Binary("CALLPUSH_BIN", "callpush"), "token --config \"" + ConfigPath + "\" --user " + user, Dir));
                var token = minted.StandardOutput.ReadToEnd().Trim();
                var error = minted.StandardError.ReadToEnd();
                minted.WaitForExit();
                if (minted.ExitCode != 0 || token.Length == 0) throw new InvalidOperationException("callpush token --user " + user + " failed: " + error);
                tokens[user] = token;
                return token;
            }
        }

        /// <summary><c>POST /v1/calls</c>: rings every live installation of <paramref name="to"/>.</summary>
        public JsonValue Ring(string callId, string to, int? ringSeconds = null, bool video = true, string fromName = "Alice Ødegård")
        {
            var body = new JsonObject
            {
                { "call_id", callId },
                { "from", new JsonObject { { "id", "alice" }, { "name", fromName } } },
                { "to", new JsonArray(new JsonPrimitive(to)) },
                { "video", video },
                { "data", new JsonObject { { "room", "r-1" } } },
            };
            if (ringSeconds.HasValue) body["ring_seconds"] = ringSeconds.Value;
            return Backend(HttpMethod.Post, "/v1/calls", body, 202);
        }

        /// <summary><c>POST /v1/calls/{id}/cancel</c>: the caller hung up.</summary>
        public void Cancel(string callId)
        {
            Backend(HttpMethod.Post, "/v1/calls/" + callId + "/cancel", new JsonObject(), 200);
        }

        /// <summary><c>GET /v1/calls/{id}</c>.</summary>
        public JsonValue Call(string callId)
        {
            return Backend(HttpMethod.Get, "/v1/calls/" + callId, null, 200);
        }

        /// <summary>Waits until the server has <paramref name="callId"/> in <paramref name="state"/>.</summary>
        public JsonValue AwaitCallState(string callId, string state)
        {
            JsonValue last = null;
            Wait.For(callId + " to be " + state + " on the server", () =>
            {
                last = Call(callId);
                return (string)last["state"] == state;
            });
            return last;
        }

        /// <summary>Another device of <paramref name="user"/> (a WNS channel nobody listens to).</summary>
        public void RegisterOtherDevice(string user, string installationId)
        {
            var body = new JsonObject
            {
                { "platform", "wns" },
                { "token", "https://db5p.notify.windows.com/w/?token=Other" + Guid.NewGuid().ToString("N") },
                { "ttl_seconds", 3600 },
            };
            Device(HttpMethod.Put, "/v1/installations/" + installationId, user, body);
        }

        /// <summary>That other device answers <paramref name="callId"/>.</summary>
        public void AnswerOnOtherDevice(string user, string installationId, string callId)
        {
            Device(HttpMethod.Post, "/v1/calls/" + callId + "/answer", user, new JsonObject { { "installation_id", installationId } });
        }

        private void Device(HttpMethod method, string route, string user, JsonValue body)
        {
            var request = new HttpRequestMessage(method, Url + route) { Content = new StringContent(body.ToString(), Encoding.UTF8, "application/json") };
            request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + Token(user));
            var response = Http.SendAsync(request).Result;
            var text = response.Content.ReadAsStringAsync().Result;
            if (response.StatusCode != HttpStatusCode.OK) Assert.Fail(method + " " + route + " answered " + (int)response.StatusCode + ": " + text);
        }

        private JsonValue Backend(HttpMethod method, string route, JsonValue body, int expect)
        {
            var request = new HttpRequestMessage(method, Url + route);
            request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + ApiKey);
            if (body != null) request.Content = new StringContent(body.ToString(), Encoding.UTF8, "application/json");
            var response = Http.SendAsync(request).Result;
            var text = response.Content.ReadAsStringAsync().Result;
            if ((int)response.StatusCode != expect) Assert.Fail(method + " " + route + " answered " + (int)response.StatusCode + ", not " + expect + ": " + text + "\n" + Log());
            return JsonValue.Parse(text);
        }

        /// <summary>A new WNS channel URI on notify.windows.com, as Windows would hand out.</summary>
        public static string NewChannelUri()
        {
            var bytes = new byte[18];
            using (var random = RandomNumberGenerator.Create()) random.GetBytes(bytes);
            return "https://wns2-by3p.notify.windows.com/w/?token=AwYAAAB" + Convert.ToBase64String(bytes).Replace("+", "%2b").Replace("/", "%2f").Replace("=", "");
        }
    }

    /// <summary>
    /// Windows' side of one channel: a PC connected to WNS. It connects to the WNS emulator for
    /// its channel (<c>POST /_emulator/devices</c>), so the emulator delivers raw notifications
    /// instead of dropping them, and hands each one, once and in order, to
    /// <see cref="RawNotificationReceived"/> as <c>RawNotification.Content</c> would.
    /// </summary>
    public sealed class WnsDevice : IWnsChannelSource, IDisposable
    {
        private static readonly HttpClient Http = new HttpClient { Timeout = TimeSpan.FromSeconds(15) };
        private readonly string emulatorUrl;
        private readonly Thread reader;
        private volatile bool closed;
        private long device;
        private int delivered;

        public WnsDevice(string emulatorUrl, string channelUri)
        {
            this.emulatorUrl = emulatorUrl;
            Connect(channelUri);
            reader = new Thread(Read) { IsBackground = true, Name = "wns-device" };
            reader.Start();
        }

        public string ChannelUri { get; private set; }

        /// <summary>Raw notifications handed to the app so far.</summary>
        public int Delivered { get { return Volatile.Read(ref delivered); } }

        public event EventHandler<string> RawNotificationReceived;

        public System.Threading.Tasks.Task<WnsChannel> OpenChannelAsync()
        {
            return System.Threading.Tasks.Task.FromResult(new WnsChannel(ChannelUri, DateTimeOffset.UtcNow.AddDays(30)));
        }

        /// <summary>Windows hands out a new channel: the device listens on it from now on.</summary>
        public void Rotate(string channelUri)
        {
            Connect(channelUri);
        }

        private void Connect(string channelUri)
        {
            var body = new StringContent(new JsonObject { { "token", channelUri } }.ToString(), Encoding.UTF8, "application/json");
            var answer = JsonValue.Parse(Http.PostAsync(emulatorUrl + "/_emulator/devices", body).Result.Content.ReadAsStringAsync().Result);
            Interlocked.Exchange(ref device, (long)answer["device"]);
            ChannelUri = channelUri;
        }

        private void Read()
        {
            while (!closed)
            {
                try
                {
                    var url = emulatorUrl + "/_emulator/devices/" + Interlocked.Read(ref device) + "/pushes?wait_ms=200";
                    var pushes = (JsonArray)JsonValue.Parse(Http.GetStringAsync(url).Result);
                    foreach (var push in pushes)
                    {
                        if ((string)push["kind"] != "app") continue;
                        Interlocked.Increment(ref delivered);
                        var handler = RawNotificationReceived;
                        if (handler != null) handler(this, (string)push["raw"]);
                    }
                }
                catch (AggregateException)
                {
                    // The emulator is gone (the end of a test), or a device id was just replaced.
                    Thread.Sleep(20);
                }
            }
        }

        public void Dispose()
        {
            closed = true;
            reader.Join(TimeSpan.FromSeconds(2));
        }
    }
}
