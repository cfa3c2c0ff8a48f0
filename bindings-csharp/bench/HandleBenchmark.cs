using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using Callpush;

/// <summary>
/// Times, through C# and P/Invoke, for WNS:
/// - <c>CallAgent.HandlePushNotification</c> of a new ring push (decode, verify, dedupe, state,
///   the toast UI with a presenter that does nothing, and the agent's event dispatch);
/// - <c>Client.HandlePush</c> of the same, with a system call UI and listener that do nothing;
/// - <c>InspectPush</c>, the decision without a client or callbacks;
/// - a call that does nothing (<c>InstallationId</c>): the fixed cost of one uniffi call.
/// Compare with <c>cargo bench -p callpush-client --bench handle</c> (<c>client/wns</c>); the ratio is
/// recorded in docs/performance.md. Run with bindings-csharp/bench.sh.
/// </summary>
public static class HandleBenchmark
{
    private const int WarmUp = 2000;
    private const int Batch = 500;

    private sealed class Quiet : ISystemCallUi, ICallListener, IToastPresenter, IAccessTokenProvider, IHttpClient
    {
        public void ReportIncomingCall(Call call) { }
        public void ReportAndEndCall(Call call, IncomingCallError reason) { }
        public void ReportIncomingCallError(string systemCallId, IncomingCallError reason) { }
        public void ReportOutgoingCall(Call call) { }
        public void ReportCallState(Call call) { }
        public void OnEvent(CallEvent @event) { }
        public void Show(Toast toast) { }
        public void Remove(string tag, string group) { }
        public Task<string> AccessTokenAsync(bool forceRefresh) { return Task.FromResult("unused"); }

        // The server knows none of these calls: each call's watch stops at once.
        public Task<HttpResponse> SendAsync(HttpRequest request)
        {
            return Task.FromResult(new HttpResponse(404, new Dictionary<string, string>(),
                System.Text.Encoding.UTF8.GetBytes("{\"error\":{\"code\":\"not_found\",\"message\":\"\"}}")));
        }
    }

    public static int Main(string[] args)
    {
        if (args.Length != 1)
        {
            Console.Error.WriteLine("usage: HandleBenchmark.exe <pushes file: a JWKS line, then one raw WNS push per line>");
            return 2;
        }
        var lines = File.ReadAllLines(args[0]);
        var jwks = lines[0];
        var pushes = lines.Skip(1).ToArray();
        var per = (pushes.Length - 2 * WarmUp) / 2;
        if (per < 4 * Batch)
        {
            Console.Error.WriteLine("need at least " + (2 * WarmUp + 8 * Batch) + " pushes");
            return 2;
        }
        var quiet = new Quiet();
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var check = CallpushMethods.InspectPush(Platform.Wns, pushes[0], jwks, now);
        if (check.Outcome != Outcome.Ring) throw new InvalidOperationException("the pushes must ring: " + check.Error.Message);

        var agent = new CallAgent(new CallAgentOptions
        {
            ServerUrl = "http://127.0.0.1:9",
            DataDirectory = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "callpush-bench-" + Guid.NewGuid().ToString("N"))).FullName,
            AccessTokens = quiet, CallUi = new ToastCallUi(quiet), Http = quiet, UserId = "bob", PinnedKeysJson = jwks,
        });
        agent.IncomingCallReceived += (s, e) => { };
        var config = new ClientConfig("http://127.0.0.1:9",
            Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "callpush-bench-" + Guid.NewGuid().ToString("N"))).FullName,
            Platform.Wns, pinnedKeysJson: jwks, userId: "bob");
        var client = new Client(config, quiet, quiet, quiet, quiet);

        var forAgent = pushes.Take(WarmUp + per).ToArray();
        var forClient = pushes.Skip(WarmUp + per).Take(WarmUp + per).ToArray();
        foreach (var p in forAgent.Take(WarmUp)) agent.HandlePushNotification(p);
        foreach (var p in forClient.Take(WarmUp)) client.HandlePush(p);
        for (var i = 0; i < WarmUp; i++) CallpushMethods.InspectPush(Platform.Wns, pushes[i], jwks, now);

        Console.WriteLine("median µs per call (p10 .. p90), batches of " + Batch + " after " + WarmUp + " warm-up calls");
        Console.WriteLine("HandlePushNotification (CallAgent, toast UI)  " + Timed(forAgent.Skip(WarmUp).ToArray(), p => agent.HandlePushNotification(p)));
        Console.WriteLine("Client.HandlePush                             " + Timed(forClient.Skip(WarmUp).ToArray(), p => client.HandlePush(p)));
        Console.WriteLine("InspectPush                                   " + Timed(pushes.Take(per).ToArray(), p => CallpushMethods.InspectPush(Platform.Wns, p, jwks, now)));
        Console.WriteLine("no-op call (InstallationId)                   " + Timed(pushes.Take(per).ToArray(), p => client.InstallationId()));
        agent.Dispose();
        client.Dispose();
        Console.Out.Flush();
        // Mono would wait forever at exit for the library's native threads (see the generator's
        // README, "Threads"); .NET exits normally.
        if (Type.GetType("Mono.Runtime") != null) ExitNow(0);
        return 0;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "_exit")]
    private static extern void ExitNow(int code);

    /// <summary>The median, p10 and p90 of per-call times over batches of <see cref="Batch"/> calls.</summary>
    private static string Timed(string[] inputs, Action<string> call)
    {
        var perCall = new List<double>();
        for (var start = 0; start + Batch <= inputs.Length; start += Batch)
        {
            var watch = Stopwatch.StartNew();
            for (var i = start; i < start + Batch; i++) call(inputs[i]);
            watch.Stop();
            perCall.Add(watch.Elapsed.TotalMilliseconds * 1000.0 / Batch);
        }
        perCall.Sort();
        Func<double, double> at = q => perCall[(int)Math.Min(perCall.Count - 1, Math.Round(q * (perCall.Count - 1)))];
        return string.Format("{0,7:F1}  ({1:F1} .. {2:F1})", at(0.5), at(0.1), at(0.9));
    }
}
