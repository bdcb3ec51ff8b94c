using TaskMerge.Engine.Config;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Merge;
using TaskMerge.Engine.Methods;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tensors.Cpu;

namespace TaskMerge.Engine.Tests.Merge;

/// <summary>
/// The CPU pipeline merges the task-arithmetic family streamed from the mapped inputs (HostTaskArithmetic); its
/// output bytes must equal the method's tensor-op form (<see cref="IMergeMethod.Merge"/> on whole decoded tensors)
/// followed by the float → dtype encoding, for every method of the family, with several chunks per tensor and an
/// odd tail, mixed input dtypes, a missing tensor, compute-dtype rounding, λ, rescale and sparsifying densities.
/// </summary>
public class StreamedTaskArithmeticTests
{
    public static TheoryData<string, string, string> Cases => new()
    {
        { "task_arithmetic", "", "{lambda: 0.7}" },
        { "task_arithmetic", "dtype: bfloat16", "{normalize: true}" },
        { "ties", "", "{}" },
        { "ties", "out_dtype: float16", "{lambda: 1.3, rescale: true}" },
        { "dare_linear", "", "{}" },
        { "dare_ties", "dtype: float16", "{rescale: false}" },
        { "breadcrumbs", "", "{gamma: 0.05}" },
        { "breadcrumbs_ties", "", "{gamma: 0.02, normalize: true}" },
        { "della", "", "{epsilon: 0.1}" },
        { "della_linear", "out_dtype: float32", "{}" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Streamed_merge_writes_the_bytes_of_the_tensor_op_form(string method, string dtypeLine, string globals)
    {
        string dir = TestPaths.NewTempDir();
        var specs = new (string Name, int[] Shape)[] { ("model.layers.0.w", [301, 437]), ("model.layers.1.w", [70_001]), ("model.layers.1.norm", [64]) };
        var rng = new Random(method.GetHashCode() ^ dtypeLine.Length);
        var baseValues = specs.Select(s => Enumerable.Range(0, s.Shape.Aggregate(1, (a, b) => a * b)).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray()).ToArray();
        for (int m = 0; m < 4; m++)
        {
            var present = specs.Where((_, i) => !(m == 2 && i == 1)).ToArray(); // expert 1 lacks one tensor
            var dtype = m == 3 ? DType.F16 : DType.BF16;
            using var w = new SafetensorsWriter(Path.Combine(dir, $"m{m}"), present.Select(s => new TensorSpec(s.Name, dtype, s.Shape.Select(d => (long)d).ToArray())), long.MaxValue);
            foreach (var (s, i) in specs.Select((s, i) => (s, i)))
            {
                if (m == 2 && i == 1) continue;
                // Quantised task vectors give magnitude ties, so the top-k tie rule is exercised too.
                w.WriteFloat32(s.Name, baseValues[i].Select(v => m == 0 ? v : v + (rng.Next(9) - 4) * 0.01f).ToArray());
            }
            w.Commit();
        }
        string cfg = Path.Combine(dir, "c.yml");
        File.WriteAllText(cfg, $"""
            merge_method: {method}
            base_model: {dir}/m0
            {dtypeLine}
            parameters: {globals}
            models:
              - model: {dir}/m1
                parameters: {"{density: 0.4, weight: 0.8}"}
              - model: {dir}/m2
                parameters: {"{density: 0.5, weight: 1.0}"}
              - model: {dir}/m3
                parameters: {"{density: 0.3, weight: 0.6}"}
            """);
        using var plan = MergePlan.Create(MergeConfig.Load(cfg), new MergeOptions { RandomSeed = 11 });
        var cpu = new CpuBackend(2);
        MergeRunner.Run(plan, Path.Combine(dir, "out"), cpu, NullProgress.Instance, TimeSpan.Zero, TestContext.Current.CancellationToken);

        using var merged = ModelSource.Open(Path.Combine(dir, "out"));
        foreach (var t in plan.Tensors)
        {
            float[] Decode(ModelSource src)
            {
                var v = src.ReadFloat32(t.Name);
                FloatConvert.RoundTo(plan.ComputeDType, v);
                return v;
            }
            using var baseT = cpu.Wrap(Decode(plan.Reference), t.Shape);
            var experts = t.Experts.Concat(t.Missing).Order()
                .Select(e => new ExpertTensor(e, cpu.Wrap(Decode(t.Missing.Contains(e) ? plan.Reference : plan.Experts[e]), t.Shape))).ToList();
            using var result = plan.Method.Merge(new TensorGroup
            {
                Name = t.Name, Depth = t.Depth, Base = baseT, Experts = experts, Backend = cpu,
                Parameters = plan.Parameters, Seed = 11, Diagnostics = new Dictionary<string, object>(),
            });
            var expected = new byte[result.Length * t.OutDType.Size()];
            FloatConvert.FromFloat(t.OutDType, CpuBackend.Span(result), expected);
            Assert.Equal(t.OutDType, merged.Get(t.Name).DType);
            Assert.True(expected.AsSpan().SequenceEqual(merged.GetBytes(t.Name)), $"{method}: tensor {t.Name} differs from the tensor-op form");
        }
    }
}
