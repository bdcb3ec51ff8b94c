using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;
using Xunit;

namespace TaskMerge.Engine.Tests.IO;

public class SafetensorsRoundTripTests
{
    public static TheoryData<DType> AllDTypes() => new(Enum.GetValues<DType>());

    [Theory]
    [MemberData(nameof(AllDTypes))]
    public void RoundTrip_EveryDType_IncludingScalarAndZeroSize(DType t)
    {
        using var dir = new TempDir();
        var specs = new[]
        {
            new TensorSpec("m.weight", t, [3, 5]),
            new TensorSpec("scalar", t, []),
            new TensorSpec("empty", t, [0, 4]),
            new TensorSpec("v.bias", t, [7]),
            new TensorSpec("cube", t, [2, 3, 4]),
        };
        var data = IOTestUtil.WriteModel(dir.Path, specs);
        Assert.Equal(["model.safetensors"], dir.FileNames());

        using var f = SafetensorsFile.Open(dir["model.safetensors"]);
        Assert.Equal(specs.Select(s => s.Name), f.Tensors.Select(x => x.Name));
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Single(f.Metadata);
        foreach (var s in specs)
        {
            Assert.True(f.TryGet(s.Name, out var info));
            Assert.Equal(t, info.DType);
            Assert.Equal(s.Shape, info.Shape);
            Assert.Equal(s.ElementCount, info.ElementCount);
            Assert.Equal(s.ByteLength, info.ByteLength);
            Assert.Equal(data[s.Name], f.GetBytes(info).ToArray());
            var copy = new byte[info.ByteLength];
            f.CopyBytes(info, 0, copy);
            Assert.Equal(data[s.Name], copy);
        }
        Assert.Equal(1, f.Tensors[1].ElementCount);
        Assert.Empty(f.Tensors[1].Shape);
        Assert.Equal(0, f.Tensors[2].ByteLength);
        Assert.False(f.TryGet("missing", out _));

        if (t.IsFloat())
        {
            var info = f.Tensors[0];
            var got = f.ReadFloat32(info);
            var want = new float[info.ElementCount];
            FloatConvert.ToFloat(t, data[info.Name], want);
            Assert.Equal(want, got);
            Assert.Empty(f.ReadFloat32(f.Tensors[2]));
        }
        else
        {
            var ex = Assert.Throws<BadInputException>(() => f.ReadFloat32(f.Tensors[0], new float[15]));
            Assert.Contains("m.weight", ex.Message);
            Assert.StartsWith(dir["model.safetensors"], ex.Message);
        }

        using var src = ModelSource.Open(dir.Path);
        Assert.Equal(dir.Path, src.Directory);
        Assert.Null(src.ConfigJsonPath);
        Assert.Equal(data.Values.Sum(b => (long)b.Length), src.TotalBytes);
        foreach (var s in specs) Assert.Equal(data[s.Name], src.GetBytes(s.Name).ToArray());
    }

    [Fact]
    public void Writer_HeaderIsPaddedTo8_AndContiguous()
    {
        using var dir = new TempDir();
        for (int nameLen = 1; nameLen <= 9; nameLen++)
        {
            string sub = Path.Combine(dir.Path, nameLen.ToString());
            var specs = new[] { new TensorSpec(new string('x', nameLen), DType.F16, [3]), new TensorSpec("b", DType.F32, [1]) };
            IOTestUtil.WriteModel(sub, specs);
            byte[] file = File.ReadAllBytes(Path.Combine(sub, "model.safetensors"));
            ulong n = BinaryPrimitives.ReadUInt64LittleEndian(file);
            Assert.Equal(0UL, (8 + n) % 8);
            Assert.Equal(8 + (long)n + 6 + 4, file.Length);
            string header = Encoding.UTF8.GetString(file, 8, (int)n);
            Assert.StartsWith("{\"__metadata__\":{\"format\":\"pt\"},", header);
            string trimmed = header.TrimEnd(' ');
            Assert.EndsWith("}", trimmed);
            Assert.True(header.Length - trimmed.Length < 8);
            using var doc = JsonDocument.Parse(header);
            var a = doc.RootElement.GetProperty(specs[0].Name);
            Assert.Equal("F16", a.GetProperty("dtype").GetString());
            Assert.Equal("[0,6]", a.GetProperty("data_offsets").GetRawText());
            Assert.Equal("[6,10]", doc.RootElement.GetProperty("b").GetProperty("data_offsets").GetRawText());
            // Header order: __metadata__ first, then tensors in declared order.
            Assert.Equal(["__metadata__", specs[0].Name, "b"], doc.RootElement.EnumerateObject().Select(p => p.Name));
        }
    }

    [Fact]
    public void Reader_AcceptsUnpaddedHeaderAndUnalignedData_AndListsInHeaderOrder()
    {
        using var dir = new TempDir();
        // Header order differs from data order; N is odd so the floats are unaligned.
        var floats = new[] { 1.5f, -2.25f, 3f };
        var data = new byte[4 + 12];
        BinaryPrimitives.WriteInt32LittleEndian(data, 42);
        Buffer.BlockCopy(floats, 0, data, 4, 12);
        string header = "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[4,16]},"
                        + "\"__metadata__\":{\"format\":\"pt\",\"note\":\"x\"},"
                        + "\"i\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[0,4]},"
                        + "\"z\":{\"dtype\":\"BF16\",\"shape\":[0],\"data_offsets\":[16,16]}}  ";
        Assert.NotEqual(0, Encoding.UTF8.GetByteCount(header) % 8);
        string path = dir["odd.safetensors"];
        IOTestUtil.WriteRaw(path, header, data);

        using var f = SafetensorsFile.Open(path);
        Assert.Equal(["w", "i", "z"], f.Tensors.Select(t => t.Name));
        Assert.Equal("x", f.Metadata["note"]);
        Assert.Equal(floats, f.ReadFloat32(f.Tensors[0]));
        Assert.Equal(42, BinaryPrimitives.ReadInt32LittleEndian(f.GetBytes(f.Tensors[1])));

        using var src = ModelSource.Open(path);
        Assert.Null(src.Directory);
        // ModelSource orders a single file by data offsets.
        Assert.Equal(["i", "w", "z"], src.Tensors.Select(t => t.Name));
        Assert.Equal(floats, src.ReadFloat32("w"));
        var part = new byte[8];
        src.CopyBytes("w", 4, part);
        Assert.Equal(data.AsSpan(8, 8).ToArray(), part);
        Assert.Throws<ArgumentOutOfRangeException>(() => src.CopyBytes("w", 8, new byte[8]));
        Assert.Throws<BadInputException>(() => src.ReadFloat32("nope"));
    }

    [Fact]
    public void Reader_IsThreadSafe()
    {
        using var dir = new TempDir();
        var specs = Enumerable.Range(0, 16).Select(i => new TensorSpec($"t{i}", DType.BF16, [64, 33])).ToArray();
        var data = IOTestUtil.WriteModel(dir.Path, specs);
        using var src = ModelSource.Open(dir.Path);
        Parallel.For(0, 256, k =>
        {
            var s = specs[k % specs.Length];
            var got = src.ReadFloat32(s.Name);
            var want = new float[s.ElementCount];
            FloatConvert.ToFloat(DType.BF16, data[s.Name], want);
            Assert.Equal(want, got);
        });
    }

    [Fact]
    public void TensorInfo_FromAnotherFile_IsRejected()
    {
        using var dir = new TempDir();
        IOTestUtil.WriteModel(Path.Combine(dir.Path, "a"), [new TensorSpec("x", DType.F32, [4])]);
        IOTestUtil.WriteModel(Path.Combine(dir.Path, "b"), [new TensorSpec("y", DType.F32, [400])]);
        using var a = SafetensorsFile.Open(Path.Combine(dir.Path, "a", "model.safetensors"));
        using var b = SafetensorsFile.Open(Path.Combine(dir.Path, "b", "model.safetensors"));
        Assert.Throws<ArgumentException>(() => a.GetBytes(b.Tensors[0]));
        // An equal entry (same name/dtype/shape/offsets) is accepted.
        var clone = a.Tensors[0] with { Shape = [4] };
        Assert.Equal(16, a.GetBytes(clone).Length);
    }

    [Fact]
    public void WriteFloat32_ConvertsToDeclaredDType()
    {
        using var dir = new TempDir();
        var values = Enumerable.Range(0, 100_000).Select(i => MathF.Sin(i * 0.37f) * 3).ToArray(); // > one chunk
        var specs = new[]
        {
            new TensorSpec("f32", DType.F32, [values.Length]), new TensorSpec("f16", DType.F16, [values.Length]),
            new TensorSpec("bf16", DType.BF16, [values.Length]), new TensorSpec("f64", DType.F64, [values.Length]),
            new TensorSpec("empty", DType.F16, [0]),
        };
        using (var w = new SafetensorsWriter(dir.Path, specs))
        {
            foreach (var s in specs.SkipLast(1)) w.WriteFloat32(s.Name, values);
            w.WriteFloat32("empty", []);
            w.Commit();
        }
        using var src = ModelSource.Open(dir.Path);
        foreach (var t in new[] { DType.F32, DType.F16, DType.BF16, DType.F64 })
        {
            var want = (float[])values.Clone();
            FloatConvert.RoundTo(t, want);
            Assert.Equal(want, src.ReadFloat32(t.SafetensorsName().ToLowerInvariant()));
        }
    }

    [Fact]
    public void Writer_ChunkedWrites_AssembleTheTensor()
    {
        using var dir = new TempDir();
        var specs = new[] { new TensorSpec("a", DType.I64, [1000]), new TensorSpec("b", DType.U8, [3]) };
        var a = IOTestUtil.Bytes(8000, 1);
        using (var w = new SafetensorsWriter(dir.Path, specs))
        {
            w.WriteChunk("a", a.AsSpan(0, 3));
            w.WriteChunk("a", a.AsSpan(3, 4000));
            Assert.Equal(0, w.WrittenCount);
            Assert.Throws<InvalidOperationException>(() => w.Write("b", [1, 2, 3]));
            Assert.Throws<ArgumentException>(() => w.WriteChunk("a", new byte[5000]));
            w.WriteChunk("a", a.AsSpan(4003));
            Assert.Equal(1, w.WrittenCount);
            Assert.Equal("b", w.NextTensorName);
            w.Write("b", [1, 2, 3]);
            w.Commit();
        }
        using var src = ModelSource.Open(dir.Path);
        Assert.Equal(a, src.GetBytes("a").ToArray());
    }

    [Fact]
    public void Writer_MisuseIsRejected()
    {
        using var dir = new TempDir();
        var specs = new[] { new TensorSpec("a", DType.F32, [2]), new TensorSpec("b", DType.I32, [2]) };
        Assert.Throws<ArgumentException>(() => new SafetensorsWriter(dir.Path, [specs[0], specs[0]]));
        Assert.Throws<ArgumentException>(() => new SafetensorsWriter(dir.Path, [new TensorSpec("__metadata__", DType.F32, [1])]));
        Assert.Throws<ArgumentException>(() => new SafetensorsWriter(dir.Path, [new TensorSpec("n", DType.F32, [-1])]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SafetensorsWriter(dir.Path, specs, 0));

        using var w = new SafetensorsWriter(dir.Path, specs);
        Assert.Throws<InvalidOperationException>(() => w.Write("b", new byte[8]));      // out of order
        Assert.Throws<InvalidOperationException>(() => w.Write("zzz", new byte[8]));    // undeclared
        Assert.Throws<ArgumentException>(() => w.Write("a", new byte[7]));              // wrong length
        Assert.Throws<ArgumentException>(() => w.WriteFloat32("a", new float[3]));      // wrong count
        w.WriteFloat32("a", [1, 2]);
        Assert.Throws<InvalidOperationException>(() => w.WriteFloat32("b", [1, 2]));   // int tensor
        Assert.Throws<InvalidOperationException>(() => w.Commit());                      // b missing
        w.Write("b", new byte[8]);
        Assert.Throws<InvalidOperationException>(() => w.Write("b", new byte[8]));      // too many
        w.Commit();
        Assert.True(w.IsCommitted);
        Assert.Equal([dir["model.safetensors"]], w.WrittenFiles);
        Assert.Throws<InvalidOperationException>(() => w.Commit());
    }

    [Fact]
    public void Writer_NoTensors_WritesHeaderOnlyFile()
    {
        using var dir = new TempDir();
        using (var w = new SafetensorsWriter(dir.Path, []))
            w.Commit();
        using var f = SafetensorsFile.Open(dir["model.safetensors"]);
        Assert.Empty(f.Tensors);
        Assert.Equal(0, f.DataLength);
    }

    [Fact]
    public void Writer_EscapesOddNames()
    {
        using var dir = new TempDir();
        string[] names = ["a\"quote", "back\\slash", "uni·çødé", "tab\tname", ""];
        var specs = names.Select(n => new TensorSpec(n, DType.U8, [1])).ToArray();
        var data = IOTestUtil.WriteModel(dir.Path, specs);
        using var src = ModelSource.Open(dir.Path);
        Assert.Equal(names, src.Tensors.Select(t => t.Name));
        foreach (var n in names) Assert.Equal(data[n], src.GetBytes(n).ToArray());
    }
}
