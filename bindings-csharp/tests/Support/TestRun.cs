using System;
using System.Runtime.InteropServices;
using NUnit.Framework;

namespace Callpush.Tests
{
    /// <summary>
    /// What happens once around the whole run: the client data directories the tests made are
    /// removed at its end, and under Mono the process is ended once NUnit is done. Mono waits at
    /// exit for every native thread that ever ran C# code, and the library's own threads (its
    /// runtime and timer threads, which call back into C#) live as long as the process: so Mono
    /// would wait forever. .NET and .NET Framework treat such threads as background threads and
    /// exit normally.
    /// </summary>
    /// <remarks>
    /// The hook runs after NUnit's Main returned (results written, exit code set) and keeps that
    /// exit code. bindings-csharp/tests/run.sh runs NUnit in the main domain (<c>-domain:None</c>)
    /// so the hook belongs to the process, not to a test domain NUnit would unload first.
    /// Elsewhere (.NET Framework: bindings-csharp/tests/run-windows.ps1) nothing is installed, and
    /// <c>libc</c> is never looked for: a P/Invoke binds at its first call.
    /// </remarks>
    [SetUpFixture]
    public class TestRun
    {
        [DllImport("libc", EntryPoint = "_exit")]
        private static extern void Exit(int code);

        [SetUp]
        public void EndTheProcessAtExitUnderMono()
        {
            if (Type.GetType("Mono.Runtime") == null) return;
            AppDomain.CurrentDomain.ProcessExit += (sender, e) =>
            {
                Console.Out.Flush();
                Console.Error.Flush();
                Exit(Environment.ExitCode);
            };
        }

        [TearDown]
        public void RemoveTheClientDataDirectories()
        {
            TempDirs.RemoveAll();
        }
    }
}
