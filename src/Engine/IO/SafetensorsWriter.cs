using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;
using TaskMerge.Engine.Tensors;
using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.IO;

/// <summary>
/// Writes a model as safetensors into an output directory: atomically (each file is written
/// under a hidden temporary name and renamed on <see cref="Commit"/>), sharded (shards are planned
/// up front like mergekit: tensors accumulate into a shard until the next would push it past
/// <c>maxShardBytes</c>) and streaming (tensor data is written in declared order as it is produced).
/// One shard is written as <c>model.safetensors</c>; several as
/// <c>model-0000i-of-0000N.safetensors</c> plus <c>model.safetensors.index.json</c>.
/// Disposing without <see cref="Commit"/> deletes every temporary file. Not thread-safe.
/// </summary>
public sealed class SafetensorsWriter : IDisposable
{
    /// <summary>Default shard size limit (5 GB, mergekit's and the CLI's default).</summary>
    public const long DefaultMaxShardBytes = 5_000_000_000;

    private sealed class Shard
    {
        public required string FileName;
        public required string TempPath;
        public required int First;        // index of first tensor
        public required int Count;        // number of tensors
        public byte[] Header = [];        // 8-byte length + padded JSON
        public long DataBytes;
        public FileStream? Stream;
        public bool Created;
    }

    private readonly TensorSpec[] _specs;
    private readonly long[] _sizes;
    private readonly int[] _shardOf;
    private readonly Dictionary<string, int> _index;
    private readonly Shard[] _shards;
    private readonly IReadOnlyDictionary<string, string> _metadata;
    private readonly List<string> _written = [];
    private int _next;           // index of the tensor being written (or next to write)
    private long _nextDone;      // bytes of tensor _next written so far
    private int _openShard = -1; // shard whose stream is open
    private bool _committed;
    private bool _disposed;
    private byte[]? _convertBuffer;

    /// <summary>
    /// Plans the output and creates <paramref name="outputDirectory"/> if needed. Nothing is
    /// written until the first <see cref="Write"/>.
    /// </summary>
    /// <param name="outputDirectory">Directory the model files go to.</param>
    /// <param name="tensors">Every tensor of the output, in file order.</param>
    /// <param name="maxShardBytes">Shard size limit in bytes of tensor data (must be positive).</param>
    /// <param name="metadata">Extra <c>__metadata__</c> entries; <c>"format": "pt"</c> is always written.</param>
    public SafetensorsWriter(string outputDirectory, IEnumerable<TensorSpec> tensors, long maxShardBytes = DefaultMaxShardBytes,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(outputDirectory);
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxShardBytes);
        _specs = tensors.ToArray();
        _sizes = new long[_specs.Length];
        _index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < _specs.Length; i++)
        {
            var s = _specs[i] ?? throw new ArgumentException("null tensor spec", nameof(tensors));
            if (s.Name is null) throw new ArgumentException("tensor with null name", nameof(tensors));
            if (s.Name == "__metadata__") throw new ArgumentException("'__metadata__' is not a valid tensor name", nameof(tensors));
            if (s.Shape is null) throw new ArgumentException($"tensor {Q(s.Name)} has a null shape", nameof(tensors));
            foreach (long d in s.Shape)
                if (d < 0) throw new ArgumentException($"tensor {Q(s.Name)} has a negative dimension", nameof(tensors));
            if (!_index.TryAdd(s.Name, i)) throw new ArgumentException($"duplicate tensor name {Q(s.Name)}", nameof(tensors));
            try { _sizes[i] = s.ByteLength; }
            catch (OverflowException) { throw new ArgumentException($"tensor {Q(s.Name)} is too large", nameof(tensors)); }
        }
        var md = new Dictionary<string, string>(StringComparer.Ordinal) { ["format"] = "pt" };
        if (metadata is not null)
            foreach (var (k, v) in metadata) md[k] = v;
        _metadata = md;

        OutputDirectory = outputDirectory;
        MaxShardBytes = maxShardBytes;
        if (File.Exists(outputDirectory))
            throw new BadInputException($"{P(outputDirectory)}: output path exists and is not a directory");
        try
        {
            System.IO.Directory.CreateDirectory(outputDirectory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BadInputException($"{P(outputDirectory)}: cannot create output directory: {OneLine(e.Message)}", e);
        }

        // Plan shards as mergekit does: flush before a tensor that would push a non-empty shard past the limit.
        var ranges = new List<(int First, int Count)>();
        int first = 0, count = 0;
        long current = 0;
        for (int i = 0; i < _specs.Length; i++)
        {
            if (count > 0 && current + _sizes[i] > maxShardBytes)
            {
                ranges.Add((first, count));
                first = i;
                count = 0;
                current = 0;
            }
            count++;
            current += _sizes[i];
        }
        if (count > 0 || ranges.Count == 0) ranges.Add((first, count));

        int n = ranges.Count;
        int pid = Environment.ProcessId;
        _shards = new Shard[n];
        _shardOf = new int[_specs.Length];
        for (int s = 0; s < n; s++)
        {
            string name = n == 1 ? ModelSource.SingleFileName : $"model-{s + 1:D5}-of-{n:D5}.safetensors";
            var sh = new Shard
            {
                FileName = name,
                TempPath = Path.Combine(outputDirectory, $".{name}.tmp-{pid}"),
                First = ranges[s].First,
                Count = ranges[s].Count,
            };
            for (int i = sh.First; i < sh.First + sh.Count; i++)
            {
                _shardOf[i] = s;
                sh.DataBytes += _sizes[i];
            }
            sh.Header = BuildHeader(sh);
            _shards[s] = sh;
        }
        TotalBytes = _sizes.Sum();
    }

    /// <summary>The output directory.</summary>
    public string OutputDirectory { get; }

    /// <summary>The shard size limit in bytes.</summary>
    public long MaxShardBytes { get; }

    /// <summary>The tensors to write, in order.</summary>
    public IReadOnlyList<TensorSpec> Tensors => _specs;

    /// <summary>Total bytes of tensor data (the index's <c>total_size</c>).</summary>
    public long TotalBytes { get; }

    /// <summary>Number of shards planned.</summary>
    public int ShardCount => _shards.Length;

    /// <summary>The planned final file names of the shards (without directory), in order.</summary>
    public IReadOnlyList<string> ShardFileNames => _shards.Select(s => s.FileName).ToArray();

    /// <summary>The final file name (without directory) of the shard holding tensor <paramref name="name"/>.</summary>
    public string ShardFileNameOf(string name) =>
        _index.TryGetValue(name, out int i) ? _shards[_shardOf[i]].FileName : throw new KeyNotFoundException($"tensor {Q(name)} is not planned");

    /// <summary>Number of tensors completely written so far.</summary>
    public int WrittenCount => _next;

    /// <summary>Name of the next tensor <see cref="Write"/> expects; null when all are written.</summary>
    public string? NextTensorName => _next < _specs.Length ? _specs[_next].Name : null;

    /// <summary>True once <see cref="Commit"/> has succeeded.</summary>
    public bool IsCommitted => _committed;

    /// <summary>
    /// Full paths of the files produced by <see cref="Commit"/> (shards, then the index when
    /// sharded); empty before commit.
    /// </summary>
    public IReadOnlyList<string> WrittenFiles => _written;

    private byte[] BuildHeader(Shard sh)
    {
        var buf = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buf, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteStartObject("__metadata__");
            foreach (var (k, v) in _metadata) w.WriteString(k, v);
            w.WriteEndObject();
            long offset = 0;
            for (int i = sh.First; i < sh.First + sh.Count; i++)
            {
                var s = _specs[i];
                w.WriteStartObject(s.Name);
                w.WriteString("dtype", s.DType.SafetensorsName());
                w.WriteStartArray("shape");
                foreach (long d in s.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + _sizes[i]);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += _sizes[i];
            }
            w.WriteEndObject();
        }
        int json = buf.WrittenCount;
        int padded = (json + 7) & ~7; // 8 + N is then a multiple of 8
        var header = new byte[8 + padded];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)padded);
        buf.WrittenSpan.CopyTo(header.AsSpan(8));
        header.AsSpan(8 + json).Fill((byte)' ');
        return header;
    }

    private void CheckUsable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_committed) throw new InvalidOperationException("the writer has already been committed");
    }

    /// <summary>Closes (flushed and fsynced) the open shard and opens shard <paramref name="s"/>, writing its header.</summary>
    private void OpenShard(int s)
    {
        if (_openShard == s) return;
        if (_openShard >= 0) CloseShard(_shards[_openShard]);
        var sh = _shards[s];
        sh.Created = true;
        sh.Stream = new FileStream(sh.TempPath, new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            Share = FileShare.None,
            BufferSize = 1 << 20,
            PreallocationSize = sh.Header.Length + sh.DataBytes,
        });
        _openShard = s;
        sh.Stream.Write(sh.Header);
    }

    private static void CloseShard(Shard sh)
    {
        if (sh.Stream is null) return;
        long expected = sh.Header.Length + sh.DataBytes;
        sh.Stream.Flush(flushToDisk: true);
        if (sh.Stream.Length != expected)
            throw new InvalidOperationException($"shard {sh.FileName} is {sh.Stream.Length} bytes, expected {expected}");
        sh.Stream.Dispose();
        sh.Stream = null;
        TestHooks.At("shard-written");
    }

    private int Expect(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (_next >= _specs.Length)
            throw new InvalidOperationException($"all tensors have been written; got unexpected tensor {Q(name)}");
        if (_specs[_next].Name != name)
        {
            string why = _index.ContainsKey(name) ? "out of order" : "not declared";
            throw new InvalidOperationException(_nextDone > 0
                ? $"tensor {Q(_specs[_next].Name)} is incomplete ({_nextDone} of {_sizes[_next]} bytes) but got tensor {Q(name)} ({why})"
                : $"expected tensor {Q(_specs[_next].Name)} next but got {Q(name)} ({why})");
        }
        return _next;
    }

    private void Append(int i, ReadOnlySpan<byte> data)
    {
        OpenShard(_shardOf[i]);
        _shards[_openShard].Stream!.Write(data);
        _nextDone += data.Length;
        if (_nextDone == _sizes[i])
        {
            _next++;
            _nextDone = 0;
        }
    }

    /// <summary>Writes the complete raw bytes of the next tensor, which must be <paramref name="name"/>.</summary>
    /// <param name="name">Name of the tensor; must be the next one in declared order.</param>
    /// <param name="data">Exactly the tensor's byte length, little-endian elements of its dtype.</param>
    public void Write(string name, ReadOnlySpan<byte> data)
    {
        CheckUsable();
        int i = Expect(name);
        if (_nextDone != 0)
            throw new InvalidOperationException($"tensor {Q(name)} was partly written with WriteChunk; finish it with WriteChunk");
        if (data.Length != _sizes[i])
            throw new ArgumentException($"tensor {Q(name)} needs {_sizes[i]} bytes but got {data.Length}", nameof(data));
        Append(i, data);
    }

    /// <summary>
    /// Appends part of the raw bytes of the next tensor (for tensors too large for one span).
    /// The tensor is complete once its byte length has been written.
    /// </summary>
    /// <param name="name">Name of the tensor; must be the one being written or the next one.</param>
    /// <param name="data">The next bytes of the tensor.</param>
    public void WriteChunk(string name, ReadOnlySpan<byte> data)
    {
        CheckUsable();
        int i = Expect(name);
        if (data.Length > _sizes[i] - _nextDone)
            throw new ArgumentException(
                $"tensor {Q(name)} needs {_sizes[i] - _nextDone} more bytes but got {data.Length}", nameof(data));
        if (data.Length == 0 && _sizes[i] != 0) return;
        Append(i, data);
    }

    /// <summary>
    /// Writes the complete values of the next tensor, converting float32 to its declared
    /// floating-point dtype (round-to-nearest-even for F16/BF16).
    /// </summary>
    /// <param name="name">Name of the tensor; must be the next one in declared order.</param>
    /// <param name="values">Exactly the tensor's element count.</param>
    public void WriteFloat32(string name, ReadOnlySpan<float> values)
    {
        CheckUsable();
        int i = Expect(name);
        var spec = _specs[i];
        if (!spec.DType.IsFloat())
            throw new InvalidOperationException($"tensor {Q(name)} is declared {spec.DType.SafetensorsName()}, not a floating-point type");
        if (_nextDone != 0)
            throw new InvalidOperationException($"tensor {Q(name)} was partly written with WriteChunk; finish it with WriteChunk");
        if (values.Length != spec.ElementCount)
            throw new ArgumentException($"tensor {Q(name)} has {spec.ElementCount} elements but got {values.Length}", nameof(values));
        if (values.Length == 0)
        {
            Append(i, []);
            return;
        }
        int size = spec.DType.Size();
        const int Chunk = 1 << 16;
        if (spec.DType == DType.F32)
        {
            for (int k = 0; k < values.Length; k += Chunk)
                Append(i, MemoryMarshal.AsBytes(values.Slice(k, Math.Min(Chunk, values.Length - k))));
            return;
        }
        _convertBuffer ??= new byte[Chunk * 8];
        for (int k = 0; k < values.Length; k += Chunk)
        {
            int n = Math.Min(Chunk, values.Length - k);
            var dst = _convertBuffer.AsSpan(0, n * size);
            FloatConvert.FromFloat(spec.DType, values.Slice(k, n), dst);
            Append(i, dst);
        }
    }

    /// <summary>
    /// Finishes the output: flushes and fsyncs every shard, renames the temporary files to their
    /// final names, and (when sharded) writes <c>model.safetensors.index.json</c> the same way.
    /// Weight files of an earlier model in the directory that the new output does not use
    /// (<c>model.safetensors</c>, <c>model-*-of-*.safetensors</c>, the index) are then removed.
    /// Throws <see cref="InvalidOperationException"/> when some tensor has not been written.
    /// </summary>
    public void Commit()
    {
        CheckUsable();
        if (_next < _specs.Length)
            throw new InvalidOperationException(
                $"cannot commit: {_specs.Length - _next} of {_specs.Length} tensors not written (next: {Q(_specs[_next].Name)})");

        // Shards that hold no bytes to write (zero-size tensors only, or no tensors) still get a file.
        for (int s = 0; s < _shards.Length; s++)
            if (!_shards[s].Created) OpenShard(s);
        if (_openShard >= 0) CloseShard(_shards[_openShard]);
        _openShard = -1;

        string? indexTemp = null;
        string indexPath = Path.Combine(OutputDirectory, ModelSource.IndexFileName);
        if (_shards.Length > 1)
        {
            indexTemp = Path.Combine(OutputDirectory, $".{ModelSource.IndexFileName}.tmp-{Environment.ProcessId}");
            WriteIndex(indexTemp);
        }

        var renamed = new List<string>();
        try
        {
            foreach (var sh in _shards)
            {
                string final = Path.Combine(OutputDirectory, sh.FileName);
                File.Move(sh.TempPath, final, overwrite: true);
                renamed.Add(final);
            }
            if (indexTemp is not null)
            {
                File.Move(indexTemp, indexPath, overwrite: true);
                renamed.Add(indexPath);
            }
        }
        catch
        {
            // Roll back: no partial set of shards is left behind.
            foreach (string f in renamed) TryDelete(f);
            if (indexTemp is not null) TryDelete(indexTemp);
            throw;
        }
        _written.AddRange(renamed);
        _committed = true;
        RemoveStaleFiles();
    }

    private void WriteIndex(string path)
    {
        using (var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            using (var w = new Utf8JsonWriter(fs, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            {
                w.WriteStartObject();
                w.WriteStartObject("metadata");
                w.WriteNumber("total_size", TotalBytes);
                w.WriteEndObject();
                w.WriteStartObject("weight_map");
                for (int i = 0; i < _specs.Length; i++) w.WriteString(_specs[i].Name, _shards[_shardOf[i]].FileName);
                w.WriteEndObject();
                w.WriteEndObject();
            }
            fs.WriteByte((byte)'\n');
            fs.Flush(flushToDisk: true);
        }
    }

    private void RemoveStaleFiles()
    {
        var keep = new HashSet<string>(_shards.Select(s => s.FileName), StringComparer.Ordinal);
        if (_shards.Length > 1) keep.Add(ModelSource.IndexFileName);
        IEnumerable<string> candidates;
        try
        {
            candidates = System.IO.Directory.EnumerateFiles(OutputDirectory, "model*.safetensors*").ToArray();
        }
        catch (IOException)
        {
            return;
        }
        foreach (string f in candidates)
        {
            string name = Path.GetFileName(f);
            if (keep.Contains(name)) continue;
            bool ours = name == ModelSource.SingleFileName || name == ModelSource.IndexFileName ||
                        System.Text.RegularExpressions.Regex.IsMatch(name, @"^model-\d{5,}-of-\d{5,}\.safetensors$");
            if (ours) TryDelete(f);
        }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>Closes open files; without a successful <see cref="Commit"/>, deletes every temporary file.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var sh in _shards)
        {
            if (sh.Stream is not null)
            {
                try { sh.Stream.Dispose(); }
                catch (IOException) { }
                sh.Stream = null;
            }
            if (!_committed && sh.Created) TryDelete(sh.TempPath);
        }
        if (!_committed) TryDelete(Path.Combine(OutputDirectory, $".{ModelSource.IndexFileName}.tmp-{Environment.ProcessId}"));
    }
}
