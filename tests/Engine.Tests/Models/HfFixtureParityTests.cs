using TaskMerge.Engine.IO;
using TaskMerge.Engine.Models;
using TaskMerge.Engine.Tensors.Cpu;

namespace TaskMerge.Engine.Tests.Models;

/// <summary>
/// Parity with Hugging Face transformers itself: every case directory that
/// <c>data/reference/make_hf_fixtures.py</c> wrote (config, weights, inputs, transformers' outputs)
/// is run through the engine's forward pass; each output must be within 1e-4 relative error.
/// Skipped while no fixtures have been generated (they need torch + transformers).
/// </summary>
public sealed class HfFixtureParityTests
{
    private static string Root => Path.Combine(TestPaths.Data, "reference");

    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        if (Directory.Exists(Root))
            foreach (var d in Directory.GetDirectories(Root).Where(d => File.Exists(Path.Combine(d, "expected.safetensors"))).Order())
                data.Add(Path.GetFileName(d));
        if (data.Count == 0) data.Add("(none generated)");
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void EngineMatchesTransformersOutputs(string name)
    {
        string dir = Path.Combine(Root, name);
        if (!File.Exists(Path.Combine(dir, "expected.safetensors")))
            Assert.Skip("no transformers fixtures yet: run tests/Engine.Tests/data/reference/make_hf_fixtures.py where torch + transformers are installed");
        using var dirOut = new IO.TempDir();
        string output = dirOut["out.safetensors"];
        ForwardRunner.Run(dir, Path.Combine(dir, "input.safetensors"), output, new CpuBackend(2), batchSize: 2);
        using var expected = SafetensorsFile.Open(Path.Combine(dir, "expected.safetensors"));
        using var actual = SafetensorsFile.Open(output);
        foreach (var t in expected.Tensors)
        {
            Assert.True(actual.TryGet(t.Name, out var a), $"{name}: engine output lacks {t.Name}");
            Assert.Equal(t.Shape, a.Shape);
            float[] e = expected.ReadFloat32(t), v = actual.ReadFloat32(a);
            double rel = Float64Reference.RelErr(v, e.Select(x => (double)x).ToArray());
            Assert.True(rel <= 1e-4, $"{name}/{t.Name}: relative error {rel:E2} > 1e-4");
        }
    }
}
