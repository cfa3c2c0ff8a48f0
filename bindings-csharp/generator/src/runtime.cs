// ---------------------------------------------------------------------------------------------
// Runtime shared by the generated code: uniffi's buffer format, calls, futures and handles.

/// <summary>A failure inside callpush or these bindings (a Rust panic, a malformed value from Rust).</summary>
public class UniffiInternalException : Exception
{
    /// <summary>Creates one with a message.</summary>
    public UniffiInternalException(string message) : base(message) { }

    /// <summary>Creates one with a message and the exception that caused it.</summary>
    public UniffiInternalException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>
/// The native library cannot be used with these bindings: it is missing, or it was built from
/// another version of callpush (its uniffi contract version or an API checksum differs).
/// </summary>
public sealed class UniffiContractException : UniffiInternalException
{
    /// <summary>Creates one with a message and what caused it.</summary>
    public UniffiContractException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>Bytes owned by Rust (uniffi's `RustBuffer`).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct RustBuffer
{
    public ulong Capacity;
    public ulong Len;
    public IntPtr Data;
}

/// <summary>Bytes owned by C#, lent to Rust for one call (uniffi's `ForeignBytes`).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct ForeignBytes
{
    public int Len;
    public IntPtr Data;
}

/// <summary>How a call across the FFI ended: 0 success, 1 typed error, 2 unexpected error or panic.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UniffiRustCallStatus
{
    public sbyte Code;
    public RustBuffer ErrorBuf;

    internal const sbyte Success = 0;
    internal const sbyte Error = 1;
    internal const sbyte UnexpectedError = 2;
}

/// <summary>Moves bytes between C# arrays and Rust buffers.</summary>
internal static class UniffiBuffers
{
    /// <summary>Copies a buffer Rust handed over and frees it.</summary>
    internal static byte[] Take(RustBuffer buffer)
    {
        try
        {
            if (buffer.Len > int.MaxValue)
            {
                throw new UniffiInternalException("a buffer from Rust is larger than 2 GiB");
            }
            var bytes = new byte[(int)buffer.Len];
            if (bytes.Length > 0)
            {
                Marshal.Copy(buffer.Data, bytes, 0, bytes.Length);
            }
            return bytes;
        }
        finally
        {
            Free(buffer);
        }
    }

    /// <summary>A new Rust buffer holding a copy of <paramref name="bytes"/>, for Rust to own.</summary>
    internal static RustBuffer Give(byte[] bytes)
    {
        var pinned = GCHandle.Alloc(bytes, GCHandleType.Pinned);
        try
        {
            var status = new UniffiRustCallStatus();
            var foreign = new ForeignBytes { Len = bytes.Length, Data = pinned.AddrOfPinnedObject() };
            var buffer = UniffiNative.__RUSTBUFFER_FROM_BYTES__(foreign, ref status);
            UniffiCalls.Check(ref status, null);
            return buffer;
        }
        finally
        {
            pinned.Free();
        }
    }

    /// <summary>A Rust buffer holding <paramref name="text"/> as UTF-8.</summary>
    internal static RustBuffer GiveString(string text)
    {
        return Give(Encoding.UTF8.GetBytes(text));
    }

    internal static void Free(RustBuffer buffer)
    {
        var status = new UniffiRustCallStatus();
        UniffiNative.__RUSTBUFFER_FREE__(buffer, ref status);
    }
}

/// <summary>Reads uniffi's buffer format (big-endian).</summary>
internal sealed class UniffiReader
{
    private readonly byte[] bytes;
    private int position;

    internal UniffiReader(byte[] bytes)
    {
        this.bytes = bytes;
    }

    private int Advance(int count)
    {
        if (count < 0 || bytes.Length - position < count)
        {
            throw new UniffiInternalException("a value from Rust ends early");
        }
        var at = position;
        position += count;
        return at;
    }

    private ulong ReadBigEndian(int count)
    {
        var at = Advance(count);
        ulong value = 0;
        for (var i = 0; i < count; i++)
        {
            value = (value << 8) | bytes[at + i];
        }
        return value;
    }

    internal byte ReadU8() { return (byte)ReadBigEndian(1); }
    internal sbyte ReadI8() { return (sbyte)ReadBigEndian(1); }
    internal ushort ReadU16() { return (ushort)ReadBigEndian(2); }
    internal short ReadI16() { return (short)ReadBigEndian(2); }
    internal uint ReadU32() { return (uint)ReadBigEndian(4); }
    internal int ReadI32() { return (int)ReadBigEndian(4); }
    internal ulong ReadU64() { return ReadBigEndian(8); }
    internal long ReadI64() { return (long)ReadBigEndian(8); }
    internal float ReadF32() { return BitConverter.ToSingle(BitConverter.GetBytes(ReadI32()), 0); }
    internal double ReadF64() { return BitConverter.Int64BitsToDouble(ReadI64()); }
    internal bool ReadBool() { return ReadI8() != 0; }

    /// <summary>A length prefix: never negative.</summary>
    internal int ReadLength()
    {
        var length = ReadI32();
        if (length < 0)
        {
            throw new UniffiInternalException("a value from Rust has a negative length");
        }
        return length;
    }

    internal string ReadString()
    {
        var length = ReadLength();
        return Encoding.UTF8.GetString(bytes, Advance(length), length);
    }

    internal byte[] ReadBytes()
    {
        var length = ReadLength();
        var value = new byte[length];
        Buffer.BlockCopy(bytes, Advance(length), value, 0, length);
        return value;
    }

    /// <summary>Fails unless every byte was read.</summary>
    internal void Finish()
    {
        if (position != bytes.Length)
        {
            throw new UniffiInternalException("a value from Rust has " + (bytes.Length - position) + " bytes left over");
        }
    }
}

/// <summary>Writes uniffi's buffer format (big-endian).</summary>
internal sealed class UniffiWriter
{
    private byte[] bytes = new byte[64];
    private int position;

    private void WriteBigEndian(ulong value, int count)
    {
        if (bytes.Length - position < count)
        {
            Array.Resize(ref bytes, Math.Max(bytes.Length * 2, position + count));
        }
        for (var i = count - 1; i >= 0; i--)
        {
            bytes[position + i] = (byte)value;
            value >>= 8;
        }
        position += count;
    }

    internal void WriteU8(byte v) { WriteBigEndian(v, 1); }
    internal void WriteI8(sbyte v) { WriteBigEndian((ulong)v, 1); }
    internal void WriteU16(ushort v) { WriteBigEndian(v, 2); }
    internal void WriteI16(short v) { WriteBigEndian((ulong)v, 2); }
    internal void WriteU32(uint v) { WriteBigEndian(v, 4); }
    internal void WriteI32(int v) { WriteBigEndian((ulong)v, 4); }
    internal void WriteU64(ulong v) { WriteBigEndian(v, 8); }
    internal void WriteI64(long v) { WriteBigEndian((ulong)v, 8); }
    internal void WriteF32(float v) { WriteI32(BitConverter.ToInt32(BitConverter.GetBytes(v), 0)); }
    internal void WriteF64(double v) { WriteI64(BitConverter.DoubleToInt64Bits(v)); }
    internal void WriteBool(bool v) { WriteI8(v ? (sbyte)1 : (sbyte)0); }

    internal void WriteString(string v)
    {
        WriteBytes(Encoding.UTF8.GetBytes(v));
    }

    internal void WriteBytes(byte[] v)
    {
        WriteI32(v.Length);
        if (bytes.Length - position < v.Length)
        {
            Array.Resize(ref bytes, Math.Max(bytes.Length * 2, position + v.Length));
        }
        Buffer.BlockCopy(v, 0, bytes, position, v.Length);
        position += v.Length;
    }

    internal RustBuffer Finish()
    {
        var written = new byte[position];
        Buffer.BlockCopy(bytes, 0, written, 0, position);
        return UniffiBuffers.Give(written);
    }
}

/// <summary>Checks how a call ended and throws what it failed with.</summary>
internal static class UniffiCalls
{
    /// <summary>
    /// Returns on success; throws the typed exception <paramref name="liftError"/> reads from the
    /// error buffer, or <see cref="UniffiInternalException"/> for a panic.
    /// </summary>
    internal static void Check(ref UniffiRustCallStatus status, Func<RustBuffer, Exception> liftError)
    {
        switch (status.Code)
        {
            case UniffiRustCallStatus.Success:
                return;
            case UniffiRustCallStatus.Error:
                if (liftError != null)
                {
                    throw liftError(status.ErrorBuf);
                }
                UniffiBuffers.Free(status.ErrorBuf);
                throw new UniffiInternalException("Rust returned an error for a call that declares none");
            case UniffiRustCallStatus.UnexpectedError:
                var message = status.ErrorBuf.Len > 0
                    ? Encoding.UTF8.GetString(UniffiBuffers.Take(status.ErrorBuf))
                    : "Rust panicked";
                throw new UniffiInternalException(message);
            default:
                throw new UniffiInternalException("unknown call status " + status.Code);
        }
    }

    /// <summary>The status of a failed callback: a typed error if one was lowered, else unexpected.</summary>
    internal static UniffiRustCallStatus Failure(Exception error, Func<Exception, RustBuffer?> lowerError)
    {
        RustBuffer? typed = null;
        try
        {
            typed = lowerError == null ? null : lowerError(error);
        }
        catch (Exception)
        {
            typed = null;
        }
        if (typed.HasValue)
        {
            return new UniffiRustCallStatus { Code = UniffiRustCallStatus.Error, ErrorBuf = typed.Value };
        }
        return new UniffiRustCallStatus
        {
            Code = UniffiRustCallStatus.UnexpectedError,
            ErrorBuf = UniffiBuffers.GiveString(error.GetType().Name + ": " + error.Message),
        };
    }

    /// <summary>
    /// Reports an exception a callback without an error type threw: Rust has no way to receive
    /// it, and it must not unwind into Rust.
    /// </summary>
    internal static void ReportUnhandled(string where, Exception error)
    {
        Trace.TraceError("callpush: " + where + " threw: " + error);
    }
}

/// <summary>Threads of the native library that call into C#.</summary>
internal static class UniffiThreads
{
    [ThreadStatic]
    private static bool marked;

    /// <summary>
    /// Marks the calling thread, a native thread entering C#, as a background thread, so it
    /// never keeps the process alive: Mono counts an attached native thread as a foreground
    /// thread and waits for it at exit (.NET already treats them as background).
    /// </summary>
    internal static void Enter()
    {
        if (marked) return;
        marked = true;
        try
        {
            Thread.CurrentThread.IsBackground = true;
        }
        catch (ThreadStateException)
        {
            // The thread is ending; nothing to keep alive.
        }
    }
}

/// <summary>Equality and hashing of record fields, collections by their contents.</summary>
internal static class UniffiEquality
{
    internal static bool Lists<T>(IReadOnlyList<T> a, IReadOnlyList<T> b)
    {
        if (ReferenceEquals(a, b)) return true;
        if (a == null || b == null || a.Count != b.Count) return false;
        var comparer = EqualityComparer<T>.Default;
        for (var i = 0; i < a.Count; i++)
        {
            if (!comparer.Equals(a[i], b[i])) return false;
        }
        return true;
    }

    internal static bool Maps<K, V>(IReadOnlyDictionary<K, V> a, IReadOnlyDictionary<K, V> b)
    {
        if (ReferenceEquals(a, b)) return true;
        if (a == null || b == null || a.Count != b.Count) return false;
        var comparer = EqualityComparer<V>.Default;
        foreach (var entry in a)
        {
            V other;
            if (!b.TryGetValue(entry.Key, out other) || !comparer.Equals(entry.Value, other)) return false;
        }
        return true;
    }

    internal static int Hash<T>(T value)
    {
        return value == null ? 0 : EqualityComparer<T>.Default.GetHashCode(value);
    }

    internal static int HashCount<T>(IReadOnlyCollection<T> value)
    {
        return value == null ? 0 : value.Count;
    }
}

/// <summary>
/// C# objects Rust holds (foreign trait implementations), by handle. Handles are odd, so Rust
/// can tell them from its own (even) object handles.
/// </summary>
internal sealed class UniffiHandleMap<T> where T : class
{
    private readonly ConcurrentDictionary<ulong, T> objects = new ConcurrentDictionary<ulong, T>();
    private long next = -1;

    internal int Count { get { return objects.Count; } }

    internal ulong Insert(T value)
    {
        var handle = (ulong)Interlocked.Add(ref next, 2);
        objects[handle] = value;
        return handle;
    }

    internal T Get(ulong handle)
    {
        T value;
        if (!objects.TryGetValue(handle, out value))
        {
            throw new UniffiInternalException("Rust used a handle it does not hold: " + handle);
        }
        return value;
    }

    internal ulong Clone(ulong handle)
    {
        return Insert(Get(handle));
    }

    internal void Remove(ulong handle)
    {
        T removed;
        objects.TryRemove(handle, out removed);
    }
}

/// <summary>The reference a C# object holds on a Rust object; freed once, by Dispose or finalisation.</summary>
internal sealed class UniffiObjectHandle : SafeHandle
{
    private readonly Action<ulong> free;
    private readonly Func<ulong, ulong> clone;

    internal UniffiObjectHandle(ulong handle, Func<ulong, ulong> clone, Action<ulong> free) : base(IntPtr.Zero, true)
    {
        this.clone = clone;
        this.free = free;
        SetHandle(new IntPtr((long)handle));
    }

    public override bool IsInvalid { get { return handle == IntPtr.Zero; } }

    /// <summary>A new Rust reference for one call; throws ObjectDisposedException after Dispose.</summary>
    internal ulong CloneForCall()
    {
        var added = false;
        DangerousAddRef(ref added);
        try
        {
            return clone((ulong)handle.ToInt64());
        }
        finally
        {
            if (added)
            {
                DangerousRelease();
            }
        }
    }

    protected override bool ReleaseHandle()
    {
        free((ulong)handle.ToInt64());
        return true;
    }
}

internal delegate void UniffiPoll(ulong future, UniffiRustFutureContinuationCallback continuation, ulong data);
internal delegate T UniffiComplete<T>(ulong future, ref UniffiRustCallStatus status);
internal delegate void UniffiCompleteVoid(ulong future, ref UniffiRustCallStatus status);
internal delegate void UniffiFreeFuture(ulong future);

/// <summary>Drives Rust futures: polls, waits for Rust's wake-up, completes and frees.</summary>
internal static class UniffiFutures
{
    private const sbyte Ready = 0;
    private static readonly ConcurrentDictionary<ulong, TaskCompletionSource<sbyte>> Waiting =
        new ConcurrentDictionary<ulong, TaskCompletionSource<sbyte>>();
    private static readonly UniffiRustFutureContinuationCallback Continuation = Resume;
    private static long next;

    /// <summary>Called by Rust, on any thread, when a polled future may make progress.</summary>
    private static void Resume(ulong data, sbyte pollResult)
    {
        UniffiThreads.Enter();
        TaskCompletionSource<sbyte> waiting;
        if (Waiting.TryRemove(data, out waiting))
        {
            waiting.TrySetResult(pollResult);
        }
    }

    private static async Task PollUntilReady(ulong future, UniffiPoll poll)
    {
        sbyte result;
        do
        {
            var data = (ulong)Interlocked.Increment(ref next);
            // Continuations run on the thread pool, never on the Rust thread that woke us.
            var waiting = new TaskCompletionSource<sbyte>(TaskCreationOptions.RunContinuationsAsynchronously);
            Waiting[data] = waiting;
            poll(future, Continuation, data);
            result = await waiting.Task.ConfigureAwait(false);
        } while (result != Ready);
    }

    internal static async Task<T> Await<T>(
        ulong future, UniffiPoll poll, UniffiComplete<T> complete, UniffiFreeFuture free,
        Func<RustBuffer, Exception> liftError)
    {
        try
        {
            await PollUntilReady(future, poll).ConfigureAwait(false);
            var status = new UniffiRustCallStatus();
            var result = complete(future, ref status);
            UniffiCalls.Check(ref status, liftError);
            return result;
        }
        finally
        {
            free(future);
        }
    }

    internal static async Task AwaitVoid(
        ulong future, UniffiPoll poll, UniffiCompleteVoid complete, UniffiFreeFuture free,
        Func<RustBuffer, Exception> liftError)
    {
        try
        {
            await PollUntilReady(future, poll).ConfigureAwait(false);
            var status = new UniffiRustCallStatus();
            complete(future, ref status);
            UniffiCalls.Check(ref status, liftError);
        }
        finally
        {
            free(future);
        }
    }
}

/// <summary>
/// Runs the async methods of foreign traits Rust calls: starts the C# task and reports its
/// result through the completion function Rust gave, exactly once, whatever happens. Rust may
/// drop its side first; the task then runs to its end and its result is discarded.
/// </summary>
internal static class UniffiForeignFutures
{
    private static readonly ConcurrentDictionary<IntPtr, Delegate> Completers = new ConcurrentDictionary<IntPtr, Delegate>();

    /// <summary>The completion function at <paramref name="pointer"/>, as a delegate (cached).</summary>
    internal static D Completer<D>(IntPtr pointer) where D : class
    {
        return (D)(object)Completers.GetOrAdd(pointer, p => Marshal.GetDelegateForFunctionPointer(p, typeof(D)));
    }

    /// <summary>
    /// Starts <paramref name="start"/> and calls <paramref name="complete"/> with its value and a
    /// success status, or with a default value and the failure's status.
    /// </summary>
    internal static void Run<T>(
        Func<Task<T>> start, Func<Exception, RustBuffer?> lowerError, Action<T, UniffiRustCallStatus> complete)
    {
        Task<T> task;
        try
        {
            task = start();
            if (task == null)
            {
                throw new InvalidOperationException("the implementation returned a null Task");
            }
        }
        catch (Exception e)
        {
            complete(default(T), UniffiCalls.Failure(e, lowerError));
            return;
        }
        task.ContinueWith(done =>
        {
            if (done.Status == TaskStatus.RanToCompletion)
            {
                try
                {
                    complete(done.Result, new UniffiRustCallStatus());
                    return;
                }
                catch (Exception e)
                {
                    // Lowering the value failed: report that instead (complete has not reached Rust).
                    complete(default(T), UniffiCalls.Failure(e, null));
                    return;
                }
            }
            var error = done.IsCanceled
                ? new TaskCanceledException("the implementation's task was cancelled")
                : done.Exception.GetBaseException();
            complete(default(T), UniffiCalls.Failure(error, lowerError));
        }, TaskScheduler.Default);
    }

    /// <summary>A task without a value as one with a placeholder value.</summary>
    internal static async Task<bool> Unit(Task task)
    {
        await task.ConfigureAwait(false);
        return true;
    }
}
