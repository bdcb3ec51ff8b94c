using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Tests.Cli;

public class InspectCommandTests
{
    private static string Zoo(string m) => Path.Combine(TestPaths.Examples, "zoo", m);

    [Fact]
    public void Inspect_lists_every_tensor_with_totals()
    {
        var (code, stdout, stderr) = CliRunner.Run("inspect", Zoo("base"));
        Assert.True(code == 0, stderr);
        Assert.Contains("vision_model.encoder.layers.1.mlp.fc2.weight", stdout);
        Assert.Contains("I64", stdout);
        using var m = ModelSource.Open(Zoo("base"));
        Assert.Contains($"{m.Tensors.Count} tensors", stdout);
    }

    [Fact]
    public void Inspect_base_prints_norms_and_a_cosine_matrix_matching_a_float64_computation_and_writes_a_png()
    {
        string png = Path.Combine(TestPaths.NewTempDir(), "cos.png");
        var (code, stdout, stderr) = CliRunner.Run("inspect", "--base", Zoo("base"), Zoo("expert_2"), Zoo("expert_3"), "--png", png, "--device", "cpu");
        Assert.True(code == 0, stderr);
        using var b = ModelSource.Open(Zoo("base"));
        using var e2 = ModelSource.Open(Zoo("expert_2"));
        using var e3 = ModelSource.Open(Zoo("expert_3"));
        double dot = 0, n2 = 0, n3 = 0;
        foreach (var t in b.Tensors.Where(t => t.DType.IsFloat()))
        {
            var x = b.ReadFloat32(t.Name);
            var y = e2.ReadFloat32(t.Name);
            var z = e3.ReadFloat32(t.Name);
            for (int i = 0; i < x.Length; i++)
            {
                double u = (float)(y[i] - x[i]), v = (float)(z[i] - x[i]);
                dot += u * v; n2 += u * u; n3 += v * v;
            }
        }
        double cos = dot / Math.Sqrt(n2 * n3);
        Assert.Contains(cos.ToString("F4", System.Globalization.CultureInfo.InvariantCulture), stdout);
        Assert.Contains(Math.Sqrt(n2).ToString("G6", System.Globalization.CultureInfo.InvariantCulture), stdout);
        var bytes = File.ReadAllBytes(png);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
        Assert.Equal(64, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)));
    }

    [Fact]
    public void Inspect_of_a_missing_model_is_exit_2()
    {
        var (code, _, stderr) = CliRunner.Run("inspect", "/nonexistent/model");
        Assert.Equal(2, code);
        Assert.Contains("/nonexistent/model", stderr);
    }

    [Fact]
    public void Inspect_png_without_base_is_exit_2_instead_of_being_ignored()
    {
        string png = Path.Combine(TestPaths.NewTempDir(), "h.png");
        var (code, _, stderr) = CliRunner.Run("inspect", Zoo("base"), "--png", png);
        Assert.Equal(2, code);
        Assert.Contains("--base", stderr);
        Assert.False(File.Exists(png));
    }
}
