using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Text;
using System.Text.Json;
using TaskMerge.Engine.Tensors;
using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.IO;

/// <summary>
/// A read-only, memory-mapped safetensors file whose header has been fully validated on
/// <see cref="Open"/>: every entry's dtype, shape and offsets, duplicate names, and that the
/// tensors tile the data section exactly. Reads are thread-safe; do not dispose while reading.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    /// <summary>Largest header accepted (100 MB), as in the reference implementation.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _data;
    private readonly Microsoft.Win32.SafeHandles.SafeFileHandle _fd;
    private readonly TensorInfo[] _tensors;
    private readonly Dictionary<string, TensorInfo> _byName;
    private int _disposed;

    private SafetensorsFile(string path, Microsoft.Win32.SafeHandles.SafeFileHandle fd, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* data,
        long headerLength, long dataLength, TensorInfo[] tensors, Dictionary<string, TensorInfo> byName,
        IReadOnlyDictionary<string, string> metadata)
    {
        Path = path;
        _fd = fd;
        _map = map;
        _view = view;
        _data = data;
        HeaderLength = headerLength;
        DataLength = dataLength;
        _tensors = tensors;
        _byName = byName;
        Metadata = metadata;
    }

    /// <summary>The path the file was opened with.</summary>
    public string Path { get; }

    /// <summary>The tensors, in the order their entries appear in the header.</summary>
    public IReadOnlyList<TensorInfo> Tensors => _tensors;

    /// <summary>The <c>__metadata__</c> entries; empty when the header has none.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Length N of the JSON header in bytes (the data section starts at 8 + N).</summary>
    public long HeaderLength { get; }

    /// <summary>Length of the data section in bytes (the sum of all tensor byte lengths).</summary>
    public long DataLength { get; }

    /// <summary>Byte offset in the file where the data section starts (8 + <see cref="HeaderLength"/>).</summary>
    public long DataStart => 8 + HeaderLength;

    /// <summary>Looks a tensor up by name.</summary>
    /// <param name="name">Tensor name.</param>
    /// <param name="info">The tensor's entry when found.</param>
    /// <returns>True when the file holds a tensor of that name.</returns>
    public bool TryGet(string name, out TensorInfo info)
    {
        if (_byName.TryGetValue(name, out var i)) { info = i; return true; }
        info = null!;
        return false;
    }

    /// <summary>True when the file holds a tensor named <paramref name="name"/>.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>
    /// Opens, memory-maps and validates a safetensors file. Every problem with the file is
    /// reported as a <see cref="BadInputException"/> whose one-line message starts with
    /// <paramref name="path"/> and names the tensor and the problem.
    /// </summary>
    /// <param name="path">Path of the <c>.safetensors</c> file.</param>
    public static SafetensorsFile Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string p = P(path);
        if (Directory.Exists(path)) throw new BadInputException($"{p}: is a directory, not a safetensors file");
        if (!File.Exists(path)) throw new BadInputException($"{p}: file not found");
        if (LooksLikePickle(path))
            throw new BadInputException($"{p}: PyTorch pickle checkpoints are not loaded; only safetensors is supported (convert it to .safetensors first)");

        FileStream fs = RegularFile.OpenRead(path, p);

        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        bool pointerAcquired = false;
        try
        {
            long fileLength = fs.Length;
            if (fileLength < 8)
                throw new BadInputException($"{p}: file is {fileLength} bytes, too short for a safetensors header (needs at least 8)");

            Span<byte> lenBytes = stackalloc byte[8];
            fs.ReadExactly(lenBytes);
            ulong n = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
            if (n == 0) throw new BadInputException($"{p}: header length is 0");
            if (n > MaxHeaderBytes)
                throw new BadInputException($"{p}: header length {n} exceeds the {MaxHeaderBytes / 1_000_000} MB limit");
            if (n > (ulong)(fileLength - 8))
                throw new BadInputException($"{p}: header length {n} exceeds the file size ({fileLength} bytes)");
            long headerLength = (long)n;
            long dataLength = fileLength - 8 - headerLength;

            var headerBytes = new byte[headerLength];
            fs.ReadExactly(headerBytes);
            fs.Position = 0;

            var (tensors, byName, metadata) = ParseHeader(p, headerBytes, dataLength);

            map = MemoryMappedFile.CreateFromFile(fs, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* basePtr = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePtr);
            pointerAcquired = true;
            byte* data = basePtr + view.PointerOffset + 8 + headerLength;
            return new SafetensorsFile(path, fs.SafeFileHandle, map, view, data, headerLength, dataLength, tensors, byName, metadata);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            if (pointerAcquired) view!.SafeMemoryMappedViewHandle.ReleasePointer();
            view?.Dispose();
            map?.Dispose();
            fs.Dispose();
            throw new BadInputException($"{p}: cannot read: {OneLine(e.Message)}", e);
        }
        catch
        {
            if (pointerAcquired) view!.SafeMemoryMappedViewHandle.ReleasePointer();
            view?.Dispose();
            map?.Dispose();
            fs.Dispose();
            throw;
        }
    }

    /// <summary>True for file names of PyTorch pickle checkpoints (<c>.bin</c>, <c>.pt</c>, <c>.pth</c>, <c>.ckpt</c>, <c>.pkl</c>).</summary>
    internal static bool LooksLikePickle(string path)
    {
        string ext = System.IO.Path.GetExtension(path).ToLowerInvariant();
        return ext is ".bin" or ".pt" or ".pth" or ".ckpt" or ".pkl" or ".pickle";
    }

    private static (TensorInfo[], Dictionary<string, TensorInfo>, IReadOnlyDictionary<string, string>) ParseHeader(
        string p, byte[] header, long dataLength)
    {
        try
        {
            StrictUtf8.GetCharCount(header);
        }
        catch (DecoderFallbackException e)
        {
            throw new BadInputException($"{p}: header is not valid UTF-8 (at byte {8 + (e.Index < 0 ? 0 : e.Index)})");
        }
        JsonSurrogates.Check(header, $"{p}: header", 8);
        if (header[0] != (byte)'{')
            throw new BadInputException($"{p}: header is not a JSON object (it must start with '{{')");

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new BadInputException($"{p}: header is not valid JSON: {OneLine(e.Message)}");
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new BadInputException($"{p}: header is not a JSON object");

            var tensors = new List<TensorInfo>();
            var byName = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
            IReadOnlyDictionary<string, string>? metadata = null;
            foreach (var prop in root.EnumerateObject())
            {
                string name = prop.Name;
                if (name == "__metadata__")
                {
                    if (metadata is not null) throw new BadInputException($"{p}: duplicate __metadata__ entry in header");
                    metadata = ParseMetadata(p, prop.Value);
                    continue;
                }
                if (byName.ContainsKey(name))
                    throw new BadInputException($"{p}: duplicate tensor name {Q(name)} in header");
                var info = ParseEntry(p, name, prop.Value, dataLength);
                tensors.Add(info);
                byName.Add(name, info);
            }

            CheckTiling(p, tensors, dataLength);
            return (tensors.ToArray(), byName, metadata ?? new Dictionary<string, string>());
        }
    }

    private static IReadOnlyDictionary<string, string> ParseMetadata(string p, JsonElement e)
    {
        var md = new Dictionary<string, string>(StringComparer.Ordinal);
        if (e.ValueKind == JsonValueKind.Null) return md;
        if (e.ValueKind != JsonValueKind.Object)
            throw new BadInputException($"{p}: __metadata__ must be an object of string to string, got {Kind(e)}");
        foreach (var kv in e.EnumerateObject())
        {
            if (kv.Value.ValueKind != JsonValueKind.String)
                throw new BadInputException($"{p}: __metadata__ value of {Q(kv.Name)} must be a string, got {Kind(kv.Value)}");
            if (!md.TryAdd(kv.Name, kv.Value.GetString()!))
                throw new BadInputException($"{p}: duplicate key {Q(kv.Name)} in __metadata__");
        }
        return md;
    }

    private static TensorInfo ParseEntry(string p, string name, JsonElement e, long dataLength)
    {
        string t = $"{p}: tensor {Q(name)}";
        if (e.ValueKind != JsonValueKind.Object)
            throw new BadInputException($"{t}: entry must be an object with dtype, shape and data_offsets, got {Kind(e)}");

        JsonElement? dtypeEl = null, shapeEl = null, offsetsEl = null;
        foreach (var kv in e.EnumerateObject())
        {
            switch (kv.Name)
            {
                case "dtype":
                    if (dtypeEl is not null) throw new BadInputException($"{t}: duplicate key 'dtype'");
                    dtypeEl = kv.Value;
                    break;
                case "shape":
                    if (shapeEl is not null) throw new BadInputException($"{t}: duplicate key 'shape'");
                    shapeEl = kv.Value;
                    break;
                case "data_offsets":
                    if (offsetsEl is not null) throw new BadInputException($"{t}: duplicate key 'data_offsets'");
                    offsetsEl = kv.Value;
                    break;
                default:
                    throw new BadInputException($"{t}: unexpected key {Q(kv.Name)} (expected dtype, shape, data_offsets)");
            }
        }
        if (dtypeEl is null) throw new BadInputException($"{t}: missing 'dtype'");
        if (shapeEl is null) throw new BadInputException($"{t}: missing 'shape'");
        if (offsetsEl is null) throw new BadInputException($"{t}: missing 'data_offsets'");

        if (dtypeEl.Value.ValueKind != JsonValueKind.String)
            throw new BadInputException($"{t}: dtype must be a string, got {Kind(dtypeEl.Value)}");
        string dtypeName = dtypeEl.Value.GetString()!;
        DType dtype = DTypes.FromSafetensorsName(dtypeName)
            ?? throw new BadInputException($"{t}: unsupported dtype {Q(dtypeName)} (supported: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL)");

        var shapeJ = shapeEl.Value;
        if (shapeJ.ValueKind != JsonValueKind.Array)
            throw new BadInputException($"{t}: shape must be a list of non-negative integers, got {Kind(shapeJ)}");
        var shape = new long[shapeJ.GetArrayLength()];
        int k = 0;
        foreach (var d in shapeJ.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long v))
                throw new BadInputException($"{t}: shape must be a list of non-negative integers, found {Raw(d)}");
            if (v < 0) throw new BadInputException($"{t}: negative dimension {v} in shape");
            shape[k++] = v;
        }

        var offJ = offsetsEl.Value;
        if (offJ.ValueKind != JsonValueKind.Array || offJ.GetArrayLength() != 2)
            throw new BadInputException($"{t}: data_offsets must be a list [begin, end] of two integers, got {Raw(offJ)}");
        long begin = 0, end = 0;
        k = 0;
        foreach (var o in offJ.EnumerateArray())
        {
            if (o.ValueKind != JsonValueKind.Number || !o.TryGetInt64(out long v) || v < 0)
                throw new BadInputException($"{t}: data_offsets must be non-negative integers, found {Raw(o)}");
            if (k++ == 0) begin = v; else end = v;
        }
        if (begin > end) throw new BadInputException($"{t}: data_offsets begin {begin} is greater than end {end}");

        long bytes;
        try
        {
            long count = 1;
            foreach (long d in shape) count = checked(count * d);
            bytes = checked(count * dtype.Size());
        }
        catch (OverflowException)
        {
            throw new BadInputException($"{t}: shape {TensorInfo.FormatShape(shape)} is too large (element count overflows)");
        }
        if (bytes != end - begin)
            throw new BadInputException(
                $"{t}: shape {TensorInfo.FormatShape(shape)} of {dtypeName} needs {bytes} bytes but data_offsets [{begin}, {end}] span {end - begin}");
        if (end > dataLength)
            throw new BadInputException($"{t}: data_offsets [{begin}, {end}] are out of bounds (data section is {dataLength} bytes)");
        return new TensorInfo(name, dtype, shape, begin, end);
    }

    private static void CheckTiling(string p, List<TensorInfo> tensors, long dataLength)
    {
        var sorted = tensors.ToArray();
        Array.Sort(sorted, static (a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
        long cursor = 0;
        TensorInfo? prev = null;
        foreach (var t in sorted)
        {
            if (t.Begin < cursor)
                throw new BadInputException($"{p}: tensor {Q(t.Name)} at [{t.Begin}, {t.End}] overlaps tensor {Q(prev!.Name)} at [{prev.Begin}, {prev.End}]");
            if (t.Begin > cursor)
                throw new BadInputException(prev is null
                    ? $"{p}: {t.Begin} unused bytes at the start of the data section before tensor {Q(t.Name)}"
                    : $"{p}: {t.Begin - cursor} unused bytes between tensor {Q(prev.Name)} and tensor {Q(t.Name)}");
            cursor = t.End;
            prev = t;
        }
        if (cursor != dataLength)
            throw new BadInputException(prev is null
                ? $"{p}: header lists no tensors but the data section holds {dataLength} bytes"
                : $"{p}: {dataLength - cursor} trailing bytes after the last tensor {Q(prev.Name)}");
    }

    private static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "a list",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => e.ValueKind.ToString(),
    };

    private static string Raw(JsonElement e)
    {
        string s = OneLine(e.GetRawText());
        return s.Length > 80 ? s[..77] + "..." : s;
    }

    private void CheckOwn(TensorInfo info)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        ArgumentNullException.ThrowIfNull(info);
        if (!_byName.TryGetValue(info.Name, out var own) || (!ReferenceEquals(own, info) && !own.Equals(info)))
            throw new ArgumentException($"tensor {Q(info.Name)} does not belong to {P(Path)}", nameof(info));
    }

    /// <summary>
    /// The raw bytes of a tensor, a view of the mapped file (valid until <see cref="Dispose"/>).
    /// Throws <see cref="NotSupportedException"/> for tensors over <see cref="int.MaxValue"/> bytes;
    /// use <see cref="CopyBytes"/> or <see cref="DataPointer"/> for those.
    /// </summary>
    /// <param name="info">A tensor of this file.</param>
    public ReadOnlySpan<byte> GetBytes(TensorInfo info)
    {
        CheckOwn(info);
        if (info.ByteLength > int.MaxValue)
            throw new NotSupportedException($"tensor {Q(info.Name)} is {info.ByteLength} bytes, too large for a span; use CopyBytes or DataPointer");
        return new ReadOnlySpan<byte>(_data + info.Begin, (int)info.ByteLength);
    }

    /// <summary>
    /// Pointer to the first byte of a tensor in the mapped file (valid until <see cref="Dispose"/>);
    /// <see cref="TensorInfo.ByteLength"/> bytes may be read from it.
    /// </summary>
    /// <param name="info">A tensor of this file.</param>
    public byte* DataPointer(TensorInfo info)
    {
        CheckOwn(info);
        return _data + info.Begin;
    }

    /// <summary>Copies <c>dst.Length</c> bytes of a tensor, starting <paramref name="offset"/> bytes into it.</summary>
    /// <param name="info">A tensor of this file.</param>
    /// <param name="offset">Byte offset inside the tensor.</param>
    /// <param name="dst">Destination; its length is the number of bytes copied.</param>
    public void CopyBytes(TensorInfo info, long offset, Span<byte> dst)
    {
        CheckOwn(info);
        if (offset < 0 || offset > info.ByteLength || dst.Length > info.ByteLength - offset)
            throw new ArgumentOutOfRangeException(nameof(offset),
                $"range [{offset}, {offset + dst.Length}) is outside tensor {Q(info.Name)} of {info.ByteLength} bytes");
        new ReadOnlySpan<byte>(_data + info.Begin + offset, dst.Length).CopyTo(dst);
    }

    /// <summary>
    /// Decodes a floating-point tensor (F32, F16, BF16, F64) into float32.
    /// Non-float tensors raise <see cref="BadInputException"/>.
    /// </summary>
    /// <param name="info">A tensor of this file.</param>
    /// <param name="dst">Destination of exactly <see cref="TensorInfo.ElementCount"/> elements.</param>
    public void ReadFloat32(TensorInfo info, Span<float> dst)
    {
        if (dst.Length != info.ElementCount)
            throw new ArgumentException($"destination holds {dst.Length} elements but tensor {Q(info.Name)} has {info.ElementCount}", nameof(dst));
        ReadFloat32(info, 0, dst);
    }

    /// <summary>
    /// Decodes elements [<paramref name="offset"/>, offset + <c>dst.Length</c>) of a floating-point tensor into float32
    /// (the one decode of tensor data: whole tensors and the merge pipeline's chunks go through it).
    /// </summary>
    /// <param name="info">A tensor of this file.</param>
    /// <param name="offset">First element decoded.</param>
    /// <param name="dst">Destination; its length is the number of elements decoded.</param>
    public void ReadFloat32(TensorInfo info, long offset, Span<float> dst)
    {
        CheckOwn(info);
        if (!info.DType.IsFloat())
            throw new BadInputException($"{P(Path)}: tensor {Q(info.Name)} has dtype {info.DType.SafetensorsName()}, not a floating-point type");
        if (offset < 0 || offset > info.ElementCount || dst.Length > info.ElementCount - offset)
            throw new ArgumentOutOfRangeException(nameof(offset), $"elements [{offset}, {offset + dst.Length}) are outside tensor {Q(info.Name)} of {info.ElementCount}");
        int size = info.DType.Size();
        const int Chunk = 1 << 24; // elements per conversion call, keeps byte spans < 2 GB
        byte* src = _data + info.Begin + offset * size;
        for (int i = 0; i < dst.Length; i += Chunk)
        {
            int n = Math.Min(Chunk, dst.Length - i);
            FloatConvert.ToFloat(info.DType, new ReadOnlySpan<byte>(src + (long)i * size, n * size), dst.Slice(i, n));
        }
    }

    /// <summary>
    /// <see cref="ReadFloat32(TensorInfo, long, Span{float})"/> fused with the non-finite check: returns the flat
    /// index within the tensor of the first NaN/±Inf (the decode stops there), or −1 when every value is finite.
    /// </summary>
    /// <param name="info">A tensor of this file.</param>
    /// <param name="offset">First element decoded.</param>
    /// <param name="dst">Destination; its length is the number of elements decoded.</param>
    public long ReadFloat32FindNonFinite(TensorInfo info, long offset, Span<float> dst)
    {
        CheckOwn(info);
        if (!info.DType.IsFloat())
            throw new BadInputException($"{P(Path)}: tensor {Q(info.Name)} has dtype {info.DType.SafetensorsName()}, not a floating-point type");
        if (offset < 0 || offset > info.ElementCount || dst.Length > info.ElementCount - offset)
            throw new ArgumentOutOfRangeException(nameof(offset), $"elements [{offset}, {offset + dst.Length}) are outside tensor {Q(info.Name)} of {info.ElementCount}");
        int size = info.DType.Size();
        const int Chunk = 1 << 24;
        byte* src = _data + info.Begin + offset * size;
        for (int i = 0; i < dst.Length; i += Chunk)
        {
            int n = Math.Min(Chunk, dst.Length - i);
            int bad = FloatConvert.ToFloatFindNonFinite(info.DType, new ReadOnlySpan<byte>(src + (long)i * size, n * size), dst.Slice(i, n));
            if (bad >= 0) return offset + i + bad;
        }
        return -1;
    }

    /// <summary>
    /// Tells the OS that this process is done with a tensor's bytes: its mapped pages leave the process's
    /// resident set (<c>madvise(MADV_DONTNEED)</c>; a later read maps them again from the file), and with
    /// <paramref name="evict"/> they also leave the page cache (<c>posix_fadvise(POSIX_FADV_DONTNEED)</c>),
    /// so a merge of inputs larger than RAM streams instead of thrashing. Does nothing off Linux.
    /// </summary>
    /// <param name="info">A tensor of this file.</param>
    /// <param name="evict">Also drop the pages from the page cache.</param>
    public void ReleasePages(TensorInfo info, bool evict)
    {
        CheckOwn(info);
        if (info.ByteLength == 0) return;
        long fileStart = DataStart + info.Begin;
        PageAdvice.DontNeed(_data - DataStart, fileStart, info.ByteLength, evict ? _fd : null);
    }

    /// <summary>Decodes a floating-point tensor into a new float32 array.</summary>
    /// <param name="info">A tensor of this file.</param>
    public float[] ReadFloat32(TensorInfo info)
    {
        CheckOwn(info);
        if (info.ElementCount > Array.MaxLength)
            throw new NotSupportedException($"tensor {Q(info.Name)} has {info.ElementCount} elements, too many for one array");
        var a = new float[info.ElementCount];
        ReadFloat32(info, a);
        return a;
    }

    /// <summary>Unmaps and closes the file; spans and pointers obtained from it become invalid.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }
}
