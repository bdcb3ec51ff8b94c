using TaskMerge.Engine.Config;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Merge;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tensors.Cpu;
using TaskMerge.Engine.Tensors.Ilgpu;
using TaskMerge.Engine.Tests.Kernels;
using static TaskMerge.Engine.Tests.Kernels.BackendParity;

namespace TaskMerge.Engine.Tests.Merge;

/// <summary>
/// <see cref="IStagingOps.Stage"/> on the device backend (ILGPU's CPU accelerator; the same code runs the
/// pinned slots and copy stream on CUDA) and on the CPU backend, and whole merges through the staged
/// pipeline on the device backend against the CPU backend.
/// </summary>
[Collection(IlgpuCpuCollection.Name)]
public sealed class DeviceStagingTests(IlgpuCpuFixture fixture)
{
    private static readonly int[][] Shapes = [[300, 200], [7], [0], [64, 64], [1, 70000], [3, 5, 11], [513]];

    private static float[] Values(int[] shape, int seed) => RandomValues(shape.Aggregate(1, (a, d) => a * d), seed, 10f);

    /// <summary>
    /// A loader thread stages tensors while this thread takes them in order and runs a kernel on each,
    /// as the merge pipeline does; every result must be its own source doubled.
    /// </summary>
    private static void StageFromAnotherThreadAndCheck(IBackend be, int count)
    {
        var staged = new System.Collections.Concurrent.BlockingCollection<(int Index, StagedTensor Tensor)>(boundedCapacity: 3);
        var loader = Task.Run(() =>
        {
            for (int i = 0; i < count; i++)
            {
                var source = Values(Shapes[i % Shapes.Length], i);
                staged.Add((i, be.Stage(Shapes[i % Shapes.Length], values => source.CopyTo(values))));
            }
            staged.CompleteAdding();
        });
        foreach (var (i, s) in staged.GetConsumingEnumerable())
        {
            using var t = s.Take();
            Assert.Equal(Shapes[i % Shapes.Length], t.Shape.ToArray());
            be.Scale(t, 2f, t);
            Assert.Equal(Values(Shapes[i % Shapes.Length], i).Select(v => v * 2f), t.ToArray());
        }
        loader.Wait();
    }

    [Fact]
    public void ManyStagedUploadsEqualTheirSources()
    {
        using var device = new IlgpuBackend(fixture.Device.Accelerator);
        StageFromAnotherThreadAndCheck(device, 60);
        Assert.True(device.Diagnostics.Staging.PinnedUploads > 0);
        Assert.Equal(60 / Shapes.Length + 1, device.Diagnostics.Staging.PlainUploads);
        Assert.True(device.Diagnostics.Staging.PinnedBytes <= device.Diagnostics.Staging.BudgetBytes);
    }

    [Fact]
    public void PastThePinnedBudgetUploadsGoThePlainWayAndStillArrive()
    {
        using var device = new IlgpuBackend(fixture.Device.Accelerator);
        device.Diagnostics.Staging.BudgetBytes = 64 << 10;
        StageFromAnotherThreadAndCheck(device, 40);
        Assert.True(device.Diagnostics.Staging.PinnedUploads > 0, "small tensors still fit the budget");
        Assert.True(device.Diagnostics.Staging.PlainUploads > 40 / Shapes.Length + 1, "the 60 000- and 70 000-element tensors do not");
        Assert.True(device.Diagnostics.Staging.PinnedBytes <= 64 << 10);
    }

    [Fact]
    public void ASlotIsReusedOnceItsTensorIsTakenOrDropped()
    {
        using var device = new IlgpuBackend(fixture.Device.Accelerator);
        var source = Values([100, 100], 1);
        device.Stage([100, 100], v => source.CopyTo(v)).Take().Dispose();
        long held = device.Diagnostics.Staging.PinnedBytes;
        device.Stage([100, 100], v => source.CopyTo(v)).Dispose();
        using var again = device.Stage([90, 100], v => source.AsSpan(0, 9000).CopyTo(v)).Take();
        Assert.Equal(held, device.Diagnostics.Staging.PinnedBytes);
        Assert.Equal(3, device.Diagnostics.Staging.PinnedUploads);
        Assert.Equal(source[..9000], again.ToArray());
    }

    [Fact]
    public void AStagedTensorIsTakenOnce()
    {
        using var device = new IlgpuBackend(fixture.Device.Accelerator);
        foreach (IBackend be in new IBackend[] { device, fixture.Cpu })
        {
            var s = be.Stage([4], v => v.Fill(1f));
            s.Take().Dispose();
            Assert.Throws<InvalidOperationException>(() => s.Take());
            s.Dispose();
        }
    }

    [Fact]
    public void AFailingFillGivesTheSlotBack()
    {
        using var device = new IlgpuBackend(fixture.Device.Accelerator);
        Assert.Throws<IOException>(() => device.Stage([1000], _ => throw new IOException("read failed")));
        device.Stage([1000], v => v.Fill(3f)).Take().Dispose();
        Assert.Equal(DevicePool.Capacity(1000) * sizeof(float), device.Diagnostics.Staging.PinnedBytes);
    }

    [Fact]
    public void TheCpuBackendAdoptsTheStagedArray()
    {
        var cpu = new CpuBackend(2);
        StageFromAnotherThreadAndCheck(cpu, 20);
        using var t = cpu.Stage([70000], v => v.Fill(2f)).Take();
        var array = cpu.DetachToHost(t);
        Assert.Equal(70000, array.Length);
        Assert.All(array, v => Assert.Equal(2f, v));
    }

    public static TheoryData<string, long> Merges => new()
    {
        { "merge_method: ties\nparameters: {lambda: 0.8}\nmodels:\n  - model: {m1}\n    parameters: {density: 0.4, weight: 1.0}\n  - model: {m2}\n    parameters: {density: 0.7, weight: 0.5}\n", HostStaging.DefaultBudgetBytes },
        { "merge_method: task_arithmetic\nparameters: {lambda: 0.5}\nmodels:\n  - model: {m1}\n  - model: {m2}\n", 3 * 4096 },
        { "merge_method: wudi\nparameters: {iter_num: 20, lr: 0.001, log_loss: true}\nmodels:\n  - model: {m1}\n  - model: {m2}\n", HostStaging.DefaultBudgetBytes },
        { "merge_method: wudi\nparameters: {solver: closed_form, ridge: 0.01}\nmodels:\n  - model: {m1}\n  - model: {m2}\n", HostStaging.DefaultBudgetBytes },
    };

    /// <summary>
    /// A whole merge — plan, staged loads on the loader thread, method on the device backend, write —
    /// equals the same merge on the CPU backend (to float rounding; the device reductions and GEMM
    /// accumulate in another order), with the uploads going through pinned slots (or, with a small
    /// budget, partly the plain way).
    /// </summary>
    [Theory]
    [MemberData(nameof(Merges))]
    public void AMergeThroughTheStagedDevicePipelineMatchesTheCpu(string method, long budget)
    {
        string dir = TestPaths.NewTempDir();
        string[] names = ["layers.0.attn.weight", "layers.0.attn.bias", "layers.0.mlp.weight", "layers.1.attn.weight", "norm.weight"];
        int[][] shapes = [[24, 16], [24], [40, 16], [24, 16], [16]];
        var rng = new Random(5);
        foreach (string model in new[] { "base", "m1", "m2" })
        {
            using var w = new SafetensorsWriter(Path.Combine(dir, model), names.Select((n, i) => new TensorSpec(n, DType.F32, shapes[i].Select(d => (long)d).ToArray())), long.MaxValue);
            foreach (var (n, i) in names.Select((n, i) => (n, i)))
                w.WriteFloat32(n, Enumerable.Range(0, shapes[i].Aggregate(1, (a, d) => a * d)).Select(_ => (float)(rng.NextDouble() - 0.5) * (model == "base" ? 1f : 0.1f)).ToArray());
            w.Commit();
        }
        string config = Path.Combine(dir, "merge.yml");
        File.WriteAllText(config, $"base_model: {dir}/base\n" + method.Replace("{m1}", $"{dir}/m1").Replace("{m2}", $"{dir}/m2"));

        using var device = new IlgpuBackend(fixture.Device.Accelerator, new ManagedDeviceSolver());
        device.Diagnostics.Staging.BudgetBytes = budget;
        var expected = Merge(config, Path.Combine(dir, "cpu"), fixture.Cpu);
        var actual = Merge(config, Path.Combine(dir, "device"), device);
        Assert.True(device.Diagnostics.Staging.PinnedUploads > 0);
        Assert.Equal(budget < HostStaging.DefaultBudgetBytes, device.Diagnostics.Staging.PlainUploads > 0);
        foreach (string n in names)
            AssertClose(expected[n], actual[n], 2e-5, n, floor: expected[n].Max(MathF.Abs));
    }

    private static Dictionary<string, float[]> Merge(string config, string outDir, IBackend backend)
    {
        using var plan = MergePlan.Create(MergeConfig.Load(config), new MergeOptions());
        MergeRunner.Run(plan, outDir, backend, NullProgress.Instance, TimeSpan.Zero);
        using var merged = ModelSource.Open(outDir);
        return merged.Tensors.ToDictionary(t => t.Name, t => merged.ReadFloat32(t.Name));
    }
}
